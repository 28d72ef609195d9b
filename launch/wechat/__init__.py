"""WeChat third-party platform push protocol: signatures, AES safe mode (crypto), typed events (events).

Pure protocol code: no Prefect, no HTTP server; the callback receiver wraps it.
"""
