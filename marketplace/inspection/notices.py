"""What the three parties of an inspection are told (issue #17), in English and Simplified Chinese.

The data of every notice: ``inspection_id``, ``booking_id`` (the booking the recipient is a party to: the
production booking for the buyer and the factory, the lab booking for the lab), ``production_booking_id``,
``lab_booking_id``, ``sample_size``, ``drop_off_date``, ``due_date``, ``tracking_reference``, ``carrier``.
"""

from __future__ import annotations

from marketplace.notifications.service import TEMPLATES

INSPECTION_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("inspection.planned", "en"): (
        "The buyer ordered an independent inspection",
        "The buyer ordered an inspection of the lot by an independent lab: ship {sample_size} parts, drawn at "
        "random from the lot, to the lab for drop-off on {drop_off_date}, and record the tracking reference. "
        "The payout waits for the lab's verdict (due {due_date}).",
    ),
    ("inspection.planned", "zh-CN"): (
        "买方已安排独立检验",
        "买方已安排独立实验室对本批零件进行检验：请从批次中随机抽取 {sample_size} 件零件，"
        "于 {drop_off_date} 送达实验室，并登记物流单号。货款将在实验室出具结论后结算（截止日期 {due_date}）。",
    ),
    ("inspection.shipped", "en"): (
        "Inspection samples shipped",
        "The factory shipped {sample_size} sample parts for inspection (tracking reference {tracking_reference}"
        " {carrier}). Results are due {due_date}.",
    ),
    ("inspection.shipped", "zh-CN"): (
        "检验样品已发出",
        "工厂已发出 {sample_size} 件检验样品（物流单号 {tracking_reference} {carrier}）。结果截止日期为 {due_date}。",
    ),
    ("inspection.received", "en"): (
        "The lab received the inspection samples",
        "The lab recorded receipt of the {sample_size} sample parts. Results are due {due_date}.",
    ),
    ("inspection.received", "zh-CN"): (
        "实验室已收到检验样品",
        "实验室已登记收到 {sample_size} 件检验样品。结果截止日期为 {due_date}。",
    ),
    ("inspection.extended", "en"): (
        "Inspection due date extended",
        "The buyer extended the inspection's due date to {due_date}.",
    ),
    ("inspection.extended", "zh-CN"): (
        "检验截止日期已延长",
        "买方已将检验截止日期延长至 {due_date}。",
    ),
    ("inspection.overdue", "en"): (
        "Inspection results are overdue",
        "The lab's inspection results were due {due_date} and have not arrived. The payout stays held: you may "
        "extend the due date, or confirm the production booking yourself (the inspection is then waived).",
    ),
    ("inspection.overdue", "zh-CN"): (
        "检验结果已逾期",
        "实验室的检验结果应于 {due_date} 提交，但尚未收到。货款仍处于暂扣状态：您可以延长截止日期，"
        "或自行确认生产预订（检验随之豁免）。",
    ),
    ("inspection.cancelled", "en"): (
        "Inspection cancelled",
        "The inspection was cancelled because its booking was cancelled, declined or expired. The payout of the "
        "production booking no longer waits for it.",
    ),
    ("inspection.cancelled", "zh-CN"): (
        "检验已取消",
        "由于相关预订已取消、被拒绝或已过期，本次检验已取消。生产预订的结算不再等待检验结果。",
    ),
    ("inspection.waived", "en"): (
        "Inspection waived",
        "The buyer settled the production booking without waiting for the inspection results.",
    ),
    ("inspection.waived", "zh-CN"): (
        "检验已豁免",
        "买方未等待检验结果，已自行结算生产预订。",
    ),
}

TEMPLATES.update(INSPECTION_TEMPLATES)
