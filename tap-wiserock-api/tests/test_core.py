"""singer-sdk's standard tap tests, against the sandbox."""

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_wiserock_api.tap import TapWiseRockApi
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, Sandbox, SandboxHTTPServer

# get_tap_test_class needs the config when the class is built, so the sandbox starts with
# this module; a daemon thread, it ends with the test process.
_SERVER = SandboxHTTPServer(Sandbox(seed=3, users=400, notes=1500)).start()

TestTapWiseRockApi = get_tap_test_class(
    tap_class=TapWiseRockApi,
    config={"api_url": _SERVER.url, "api_key": SANDBOX_API_KEY, "email": SANDBOX_EMAIL,
            "password": SANDBOX_PASSWORD, "page_size": 250},
    suite_config=SuiteConfig(),
)
