pytest_plugins = ["tests.support.aio"]
