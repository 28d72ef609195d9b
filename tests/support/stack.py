from devtools.stack import ROOT, Stack, free_port, wait_http  # noqa: F401  (tests use the product's own stack)
from launch.orchestration.connect import refresh_in_process_settings  # noqa: F401
