from launch.stack import ROOT, Stack, free_port, refresh_in_process_settings, wait_http  # noqa: F401  (tests use the product's own stack)
