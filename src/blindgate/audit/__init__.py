"""The operator's and a regulator's checks of what the gateway holds: the privacy scanner
(`scanner`) and the linkage measure (`linkage`), run by `blindgate audit` (`commands`).

The tamper-evident log of keys, policies and data use is `blindgate.translog`."""
