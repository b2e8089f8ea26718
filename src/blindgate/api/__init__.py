"""Wire models of the Alipay+ / AMS API: result codes (`results`), amounts (`amounts`), requests (`models`).

The bottom of the payment path's own code: beside itself it imports only the layers under it
(`blindgate.errors`, `blindgate.net`, `blindgate.crypto`).
"""

from blindgate.api.amounts import EXPONENTS, Money, exponent, parse_money
from blindgate.api.results import RESULTS, ApiError, result, status_of

__all__ = ["EXPONENTS", "RESULTS", "ApiError", "Money", "exponent", "parse_money", "result", "status_of"]
