"""Reference wallet and acquirer backends used by the demo and the tests."""
