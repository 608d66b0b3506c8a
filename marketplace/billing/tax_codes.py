"""Default tax classification codes (商品和服务税收分类编码) for fapiao lines, by process family (the first dotted
segment of a listing's process code), plus the platform's commission and a fallback ("*").

Sources (the State Taxation Administration revises the table and its short names, so an
operator confirms the codes against the current table in the e-tax bureau's invoicing module, and overrides them
with ``MARKETPLACE_FAPIAO_TAX_CODES``, see docs/tax.md):

* 201 加工劳务 (processing labour: work on the buyer's material or parts, which is what our machine time, sheet
  metal, moulding, welding, heat treatment and surface finishing are): 2010500000000000000 其他加工劳务, the leaf
  invoicing products offer as "劳务-13% / 其他加工劳务-13%" (public invoicing-form test data), under the table's
  chapter 201 加工劳务 (chapter codes 2010000000000000000, 2010100000000000000 稀土冶炼分离产品加工劳务 in a
  public export of the table).
* 30401 研发和技术服务 (research and technical services): testing labs invoice 检验检测 as
  3040105000000000000 专业技术服务, printed "*研发和技术服务*..." (public 数电 invoicing samples); the table has no
  separate 检验检测 leaf in the sources we could check.
* 30408 商务辅助服务 → 3040802000000000000 经纪代理服务 (brokerage and agency services, 6 %), the platform's
  matching commission (public tax-classification seed data: "商务辅助服务-经纪代理服务", 6.00). A platform that
  bills its commission as an information service uses 3040205000000000000 信息系统增值服务 instead.

The VAT rate is not part of the code here: a sales line carries the rate of the platform invoice it comes from
(``MARKETPLACE_INVOICE_TAX_RATE_BP``), the commission ``MARKETPLACE_FAPIAO_COMMISSION_TAX_RATE_BP``.
"""

from __future__ import annotations

from collections.abc import Mapping

from marketplace.core.settings import FapiaoTaxCode

COMMISSION = "commission"
FALLBACK = "*"

_PROCESSING = "2010500000000000000"  # 其他加工劳务 (201 加工劳务)
_TESTING = "3040105000000000000"  # 专业技术服务 (30401 研发和技术服务)
_BROKERAGE = "3040802000000000000"  # 经纪代理服务 (30408 商务辅助服务)

DEFAULTS: dict[str, FapiaoTaxCode] = {
    "machining": FapiaoTaxCode(code=_PROCESSING, item="机械加工费", short_name="加工劳务"),
    "sheet_metal": FapiaoTaxCode(code=_PROCESSING, item="钣金加工费", short_name="加工劳务"),
    "additive": FapiaoTaxCode(code=_PROCESSING, item="3D打印加工费", short_name="加工劳务"),
    "moulding": FapiaoTaxCode(code=_PROCESSING, item="成型加工费", short_name="加工劳务"),
    "casting": FapiaoTaxCode(code=_PROCESSING, item="铸造加工费", short_name="加工劳务"),
    "forging": FapiaoTaxCode(code=_PROCESSING, item="锻造加工费", short_name="加工劳务"),
    "welding": FapiaoTaxCode(code=_PROCESSING, item="焊接加工费", short_name="加工劳务"),
    "heat_treat": FapiaoTaxCode(code=_PROCESSING, item="热处理加工费", short_name="加工劳务"),
    "surface": FapiaoTaxCode(code=_PROCESSING, item="表面处理加工费", short_name="加工劳务"),
    "assembly": FapiaoTaxCode(code=_PROCESSING, item="装配加工费", short_name="加工劳务"),
    "testing": FapiaoTaxCode(code=_TESTING, item="检验检测费", short_name="研发和技术服务"),
    COMMISSION: FapiaoTaxCode(code=_BROKERAGE, item="平台撮合服务费", short_name="经纪代理服务"),
    FALLBACK: FapiaoTaxCode(code=_PROCESSING, item="加工费", short_name="加工劳务"),
}


def merged(overrides: Mapping[str, FapiaoTaxCode]) -> dict[str, FapiaoTaxCode]:
    """The defaults with the configured overrides (``Settings.fapiao_tax_codes``) on top."""
    return {**DEFAULTS, **overrides}


def family_of(process_codes: list[str] | None) -> str:
    """The process family of a listing: the first segment of its first process code ("" if it has none)."""
    first = (process_codes or [""])[0]
    return first.split(".", 1)[0]


def code_for(codes: Mapping[str, FapiaoTaxCode], family: str) -> FapiaoTaxCode:
    return codes.get(family) or codes.get(FALLBACK) or DEFAULTS[FALLBACK]
