"""Wire models of the Alipay+ / AMS API: requests, responses, result codes, amounts."""
