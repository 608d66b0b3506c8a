"""The notifications of the lab's report (issue #17), in English and Simplified Chinese."""

from __future__ import annotations

from marketplace.notifications.service import TEMPLATES

# Why a report could not gate the payment, in each language (notification data carries both).
ACCREDITATION_WHY: dict[str, tuple[str, str]] = {
    "covered": ("covered", "在认可范围内"),
    "no_certificate": (
        "the lab has no verified ISO/IEC 17025 (CNAS) accreditation",
        "实验室没有已验证的 ISO/IEC 17025（CNAS）认可证书",
    ),
    "not_valid_on_test_date": (
        "the lab's accreditation was not valid on the test date",
        "实验室的认可证书在检测日期无效",
    ),
    "out_of_scope": (
        "the test standard is outside the scope of the lab's accreditation",
        "检测标准不在实验室的认可范围内",
    ),
}

TEMPLATES.update(
    {
        ("inspection.accepted", "en"): (
            "Lot accepted: {title}",
            "{lab} tested {sample_size} units of {title}: {nonconforming} nonconforming (accept up to "
            "{accept_number}). The lot is accepted; the factory's payment is released as the booking settles.",
        ),
        ("inspection.accepted", "zh-CN"): (
            "批次合格：{title}",
            "{lab} 检测了 {title} 的 {sample_size} 件样品：{nonconforming} 件不合格（接收数 {accept_number}）。"
            "该批次判定为接收；预订结算时向工厂放款。",
        ),
        ("inspection.rejected", "en"): (
            "Lot rejected: {title}",
            "{lab} tested {sample_size} units of {title}: {nonconforming} nonconforming (reject from "
            "{reject_number}). The lot is rejected: the payment stays held and a dispute is open on the booking; "
            "the platform decides the remedy (refund or rework) with the report as evidence.",
        ),
        ("inspection.rejected", "zh-CN"): (
            "批次不合格：{title}",
            "{lab} 检测了 {title} 的 {sample_size} 件样品：{nonconforming} 件不合格（拒收数 {reject_number}）。"
            "该批次判定为拒收：款项继续托管，预订已进入争议处理；平台将以检测报告为证据决定处理方式（退款或返工）。",
        ),
        ("inspection.not_gating", "en"): (
            "The inspection report cannot release the payment: {title}",
            "You required an accredited test, and the lab's accreditation did not cover this one "
            "({accreditation_en}). The report says {nonconforming} of {sample_size} units nonconforming. Confirm the "
            "booking to pay the factory, or dispute it until {decide_by}; after that it settles automatically.",
        ),
        ("inspection.not_gating", "zh-CN"): (
            "检测报告不能作为放款依据：{title}",
            "您要求认可范围内的检测，但实验室的认可未覆盖本次检测（{accreditation_zh}）。报告显示 {sample_size} "
            "件样品中 {nonconforming} 件不合格。您可以确认预订向工厂付款，或在 {decide_by} 前提出异议；"
            "逾期将自动结算。",
        ),
        ("inspection.reported", "en"): (
            "Inspection report received: {title}",
            "{lab} tested {sample_size} units of {title}: {nonconforming} nonconforming. The buyer decides "
            "whether to confirm the booking (the report cannot release the payment on its own).",
        ),
        ("inspection.reported", "zh-CN"): (
            "已收到检测报告：{title}",
            "{lab} 检测了 {title} 的 {sample_size} 件样品：{nonconforming} 件不合格。由买方决定是否确认预订"
            "（该报告不能单独作为放款依据）。",
        ),
    }
)
