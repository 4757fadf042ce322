"""Many inputs on a Ray cluster (``toppose batch``): each item's outputs exactly what ``toppose run`` writes for it,
in its own folder, resumable and recorded in a done manifest. See docs/batch.md.

:mod:`~toppose.batch.items` reads the inputs and manifests, :mod:`~toppose.batch.driver` runs them, through the
worker actors of :mod:`~toppose.batch.cluster` (the only module that imports Ray) running
:mod:`~toppose.batch.worker`; :mod:`~toppose.batch.done` records what is finished.
"""

from toppose.batch.driver import run_batch
from toppose.batch.items import ItemSpec, read_specs
from toppose.batch.options import BatchOptions

__all__ = ["BatchOptions", "ItemSpec", "read_specs", "run_batch"]
