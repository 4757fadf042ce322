"""The setups' TOML files (``setup_*.toml``), the model configs and the training configs, shipped as package data.

Installed as ``toppose.configs``; :data:`toppose.common.config.CONFIG_DIR` is this folder, wherever the
package was installed.
"""
