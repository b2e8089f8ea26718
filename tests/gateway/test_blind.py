"""The gateway is blind: nothing it writes holds a payer's personal value, in clear or encoded."""

import dataclasses
import logging
import shutil
from pathlib import Path

import pytest

from blindgate import logs
from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, PAY_PATH, REFUND_PATH
from blindgate.audit.scanner import scan_directory
from tests.gateway.harness import PAYER, POOR, build, code_of_answer, order_code_body, pay_body, run


def test_nothing_personal_reaches_the_gateways_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    net = build(tmp_path / "net")
    gateway_dir = tmp_path / "gateway-files"
    gateway_dir.mkdir()
    logs.configure(gateway_dir / "gateway.log", level=logging.DEBUG)
    try:
        paid = run(net.sdk(PAY_PATH, pay_body("blind-1", 900)))
        assert paid["result"]["resultStatus"] == "S"
        run(net.sdk(PAY_PATH, pay_body("blind-2", 10**9, code=POOR.payment_code)))
        run(
            net.sdk(
                REFUND_PATH,
                {
                    "refundRequestId": "blind-r",
                    "paymentId": paid["paymentId"],
                    "refundAmount": {"currency": "SGD", "value": "100"},
                },
            )
        )
        run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "blind-1"}))
        run(net.sdk(CANCEL_PATH, {"paymentRequestId": "blind-1"}))
        # Order codes: one paid by a scan (then scanned again by another payer), one declined.
        paid_code = code_of_answer(run(net.sdk(PAY_PATH, order_code_body("blind-oc-1", 800))))
        assert run(net.app_scan(PAYER.payment_code, paid_code))["result"]["resultStatus"] == "S"
        assert run(net.app_scan(POOR.payment_code, paid_code))["result"]["resultStatus"] == "F"
        poor_code = code_of_answer(run(net.sdk(PAY_PATH, order_code_body("blind-oc-2", 10**7))))
        assert run(net.app_scan(POOR.payment_code, poor_code))["result"]["resultStatus"] == "F"
        run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "blind-oc-1"}))
    finally:
        logging.getLogger("blindgate").handlers.clear()
    for name in ("gateway.db", "gateway.db-wal", "gateway.db-shm"):
        if (net.root / name).exists():
            shutil.copy(net.root / name, gateway_dir / name)
    values: dict[str, list[str]] = {}
    for customer in (PAYER, POOR):
        for kind, value in dataclasses.asdict(customer).items():
            if kind not in ("wallet_id", "balance"):
                values.setdefault(kind, []).append(str(value))
    report = scan_directory(gateway_dir, values)
    assert report.files_scanned >= 2
    assert report.found == 0, report
