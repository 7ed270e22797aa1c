"""singer-sdk's standard tap tests, on the sample data in data/."""

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_wiserock_csv.tap import TapWiseRockCsv
from tests.conftest import REPO_DATA

TestTapWiseRockCsv = get_tap_test_class(
    tap_class=TapWiseRockCsv,
    config={"data_dir": str(REPO_DATA), "cache_dir": "",
            "files": [{"path": "Customers.csv"}, {"path": "Orders.csv", "keys": ["order_id"]},
                      {"path": "Order Items.CSV"}]},
    suite_config=SuiteConfig(),
)
