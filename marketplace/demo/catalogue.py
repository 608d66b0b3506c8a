"""Catalogue data of the synthetic market: clusters, shop types, machines, lab services, weekly plans, names.

Sources are ``/work/shared/DOMAIN.md`` (sections cited inline); values it marks unverified, or does not give,
are labelled ``est.``. Only literal tables live here (a data module, exempt from the size rule); the generator
that samples from them is :mod:`marketplace.demo.generator`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SEED_PASSWORD = "demo-password-123"
SEED_EMAIL_DOMAIN = "seed.example"
CN_TZ = "Asia/Shanghai"
DE_TZ = "Europe/Berlin"

# -- geography (DOMAIN.md section 7; lat/lon per [tcm], region codes per [modood]) --------------------


@dataclass(frozen=True)
class Cluster:
    key: str
    name_zh: str
    name_en: str
    country: str
    region_codes: tuple[str, ...]  # first is the city; others are districts inside it
    lat: float
    lon: float
    timezone: str
    province_zh: str
    districts: tuple[str, ...]
    weight: float  # share of suppliers
    shops: tuple[tuple[str, float], ...]  # shop types typical of the cluster (specialities), weighted


CLUSTERS: tuple[Cluster, ...] = (
    Cluster(
        "dongguan",
        "东莞",
        "Dongguan",
        "CN",
        ("441900",),
        23.02,
        113.76,
        CN_TZ,
        "广东省",
        ("长安镇", "虎门镇", "松山湖", "塘厦镇"),
        12,
        (("mould", 4), ("injection", 3), ("electronics", 2), ("stamping", 2), ("cnc", 2), ("surface", 1)),
    ),
    Cluster(
        "shenzhen",
        "深圳",
        "Shenzhen",
        "CN",
        ("440300",),
        22.60,
        114.16,
        CN_TZ,
        "广东省",
        ("宝安区", "龙岗区", "龙华区", "光明区"),
        12,
        (("electronics", 4), ("cnc", 4), ("additive", 2), ("sheet", 1), ("surface", 1)),
    ),
    Cluster(
        "foshan",
        "佛山",
        "Foshan",
        "CN",
        ("440600", "440606"),
        22.98,
        113.07,
        CN_TZ,
        "广东省",
        ("顺德区", "南海区", "三水区"),
        7,
        (("stamping", 3), ("die_casting", 2), ("surface", 3), ("injection", 2), ("sheet", 2)),
    ),
    Cluster(
        "zhongshan",
        "中山",
        "Zhongshan",
        "CN",
        ("442000",),
        22.52,
        113.39,
        CN_TZ,
        "广东省",
        ("古镇镇", "小榄镇", "大涌镇"),
        3,
        (("die_casting", 2), ("sheet", 2), ("surface", 2), ("furniture", 2), ("electronics", 1)),
    ),
    Cluster(
        "suzhou",
        "苏州",
        "Suzhou",
        "CN",
        ("320500",),
        31.30,
        120.61,
        CN_TZ,
        "江苏省",
        ("工业园区", "吴中区", "相城区", "高新区"),
        12,
        (("cnc", 5), ("precision", 3), ("turning", 2), ("electronics", 2), ("sheet", 1)),
    ),
    Cluster(
        "changzhou",
        "常州",
        "Changzhou",
        "CN",
        ("320400",),
        31.79,
        119.96,
        CN_TZ,
        "江苏省",
        ("武进区", "新北区", "金坛区"),
        6,
        (("welding", 3), ("sheet", 3), ("cnc", 2), ("heat_treat", 1), ("casting_forging", 1)),
    ),
    Cluster(
        "ningbo",
        "宁波",
        "Ningbo",
        "CN",
        ("330200",),
        29.87,
        121.63,
        CN_TZ,
        "浙江省",
        ("北仑区", "余姚市", "慈溪市", "宁海县"),
        9,
        (("mould", 4), ("injection", 4), ("die_casting", 3), ("cnc", 1), ("surface", 1)),
    ),
    Cluster(
        "taizhou",
        "台州",
        "Taizhou",
        "CN",
        ("331000",),
        28.63,
        121.36,
        CN_TZ,
        "浙江省",
        ("黄岩区", "温岭市", "路桥区"),
        5,
        (("mould", 3), ("injection", 3), ("turning", 2), ("casting_forging", 1)),
    ),
    Cluster(
        "wenzhou",
        "温州",
        "Wenzhou",
        "CN",
        ("330300",),
        28.00,
        120.69,
        CN_TZ,
        "浙江省",
        ("乐清市", "瓯海区", "龙湾区"),
        5,
        (("turning", 3), ("casting_forging", 2), ("stamping", 2), ("electronics", 1), ("injection", 1)),
    ),
    Cluster(
        "qingdao",
        "青岛",
        "Qingdao",
        "CN",
        ("370200",),
        36.12,
        120.39,
        CN_TZ,
        "山东省",
        ("黄岛区", "城阳区", "即墨区"),
        5,
        (("stamping", 2), ("sheet", 2), ("welding", 2), ("injection", 2), ("cnc", 1)),
    ),
    Cluster(
        "tianjin",
        "天津",
        "Tianjin",
        "CN",
        ("120000",),
        39.09,
        117.33,
        CN_TZ,
        "天津市",
        ("滨海新区", "西青区", "东丽区"),
        5,
        (("stamping", 2), ("welding", 2), ("precision", 2), ("heat_treat", 1), ("die_casting", 1)),
    ),
    Cluster(
        "chongqing",
        "重庆",
        "Chongqing",
        "CN",
        ("500000",),
        29.60,
        106.51,
        CN_TZ,
        "重庆市",
        ("璧山区", "两江新区", "九龙坡区"),
        6,
        (
            ("die_casting", 2),
            ("casting_forging", 2),
            ("turning", 2),
            ("stamping", 2),
            ("heat_treat", 1),
            ("welding", 1),
        ),
    ),
    Cluster(
        "wuhan",
        "武汉",
        "Wuhan",
        "CN",
        ("420100",),
        30.55,
        114.24,
        CN_TZ,
        "湖北省",
        ("经济技术开发区", "东湖高新区", "蔡甸区"),
        5,
        (("stamping", 3), ("welding", 2), ("sheet", 2), ("cnc", 2), ("electronics", 1)),
    ),
    Cluster(
        "chengdu",
        "成都",
        "Chengdu",
        "CN",
        ("510100",),
        30.71,
        104.01,
        CN_TZ,
        "四川省",
        ("龙泉驿区", "新都区", "双流区"),
        5,
        (("precision", 3), ("electronics", 2), ("additive", 1), ("surface", 1), ("cnc", 2)),
    ),
    Cluster(
        "xian",
        "西安",
        "Xi'an",
        "CN",
        ("610100",),
        34.34,
        108.94,
        CN_TZ,
        "陕西省",
        ("阎良区", "高新区", "经开区"),
        4,
        (("precision", 3), ("cnc", 2), ("additive", 1), ("heat_treat", 1), ("casting_forging", 1)),
    ),
    Cluster(
        "shenyang",
        "沈阳",
        "Shenyang",
        "CN",
        ("210100",),
        41.79,
        123.44,
        CN_TZ,
        "辽宁省",
        ("铁西区", "浑南区", "大东区"),
        4,
        (("cnc", 2), ("precision", 2), ("casting_forging", 2), ("heat_treat", 1), ("welding", 1)),
    ),
    Cluster(
        "ganzhou",
        "赣州",
        "Ganzhou",
        "CN",
        ("360700",),
        25.86,
        114.92,
        CN_TZ,
        "江西省",
        ("南康区",),
        2,
        (("furniture", 4), ("surface", 1)),
    ),
    # A few European sites (coordinates: general knowledge, est.).
    Cluster(
        "stuttgart",
        "斯图加特",
        "Stuttgart",
        "DE",
        ("DE-BW",),
        48.78,
        9.18,
        DE_TZ,
        "",
        (),
        1.2,
        (("precision", 2), ("cnc", 2), ("sheet", 1)),
    ),
    Cluster(
        "karlsruhe",
        "卡尔斯鲁厄",
        "Karlsruhe",
        "DE",
        ("DE-BW",),
        49.01,
        8.40,
        DE_TZ,
        "",
        (),
        0.5,
        (("cnc", 2), ("additive", 1)),
    ),
    Cluster(
        "munich",
        "慕尼黑",
        "München",
        "DE",
        ("DE-BY",),
        48.14,
        11.58,
        DE_TZ,
        "",
        (),
        0.8,
        (("precision", 2), ("electronics", 1), ("additive", 1)),
    ),
    Cluster(
        "nuremberg",
        "纽伦堡",
        "Nürnberg",
        "DE",
        ("DE-BY",),
        49.45,
        11.08,
        DE_TZ,
        "",
        (),
        0.5,
        (("sheet", 1), ("turning", 1), ("welding", 1)),
    ),
)
CN_CLUSTERS = tuple(c for c in CLUSTERS if c.country == "CN")
DE_POSTCODES = {"stuttgart": "70565", "karlsruhe": "76187", "munich": "80939", "nuremberg": "90411"}
AUTOMOTIVE_CLUSTERS = frozenset({"chongqing", "wuhan", "tianjin", "changzhou", "shenyang", "stuttgart", "munich"})
AEROSPACE_CLUSTERS = frozenset({"chengdu", "xian", "shenyang", "tianjin"})
MEDICAL_CLUSTERS = frozenset({"suzhou", "shenzhen", "munich"})

# -- shop types: the process mix of a factory ----------------------------------------------------------


@dataclass(frozen=True)
class ShopType:
    word_zh: str
    word_en: str
    word_de: str
    processes: tuple[tuple[str, float], ...]


_M = "machining."
SHOP_TYPES: dict[str, ShopType] = {
    "cnc": ShopType(
        "精密机械",
        "Precision Machinery",
        "Präzisionstechnik",
        (
            (_M + "milling.cnc_3axis", 40),
            (_M + "milling.cnc_4axis", 10),
            (_M + "milling.cnc_5axis", 6),
            (_M + "turning.cnc_lathe", 15),
            (_M + "turning.turn_mill", 4),
            (_M + "milling.manual", 4),
            (_M + "turning.manual", 3),
            (_M + "grinding.surface", 4),
            (_M + "edm.wire_fast", 3),
            ("surface.sandblast", 2),
        ),
    ),
    "precision": ShopType(
        "航空零部件",
        "Aerospace Components",
        "Feinwerktechnik",
        (
            (_M + "milling.cnc_5axis", 30),
            (_M + "milling.cnc_4axis", 10),
            (_M + "turning.turn_mill", 14),
            (_M + "milling.cnc_3axis", 15),
            (_M + "grinding.cylindrical", 5),
            (_M + "edm.wire_slow", 6),
            (_M + "milling.gantry", 4),
            ("heat_treat.nitride", 3),
            ("surface.anodize.hard", 3),
            ("additive.slm", 3),
        ),
    ),
    "turning": ShopType(
        "机械配件",
        "Machine Parts",
        "Drehteile",
        (
            (_M + "turning.cnc_lathe", 40),
            (_M + "turning.turn_mill", 12),
            (_M + "turning.swiss", 15),
            (_M + "turning.manual", 5),
            (_M + "milling.cnc_3axis", 15),
            (_M + "grinding.cylindrical", 6),
            ("casting.investment", 4),
            ("surface.passivate", 3),
        ),
    ),
    "mould": ShopType(
        "模具",
        "Mould",
        "Formenbau",
        (
            (_M + "milling.cnc_3axis", 22),
            ("moulding.tooling.injection_mould", 10),
            (_M + "edm.sinker", 15),
            (_M + "edm.wire_slow", 14),
            (_M + "edm.wire_fast", 10),
            (_M + "grinding.surface", 10),
            (_M + "milling.cnc_5axis", 5),
            (_M + "milling.gantry", 4),
            ("surface.polish", 5),
            ("moulding.injection.le_200t", 5),
        ),
    ),
    "injection": ShopType(
        "塑胶制品",
        "Plastic Products",
        "Kunststofftechnik",
        (
            ("moulding.injection.le_200t", 40),
            ("moulding.injection.t200_800", 25),
            ("moulding.injection.gt_800t", 5),
            ("moulding.injection.two_shot", 7),
            ("moulding.tooling.injection_mould", 5),
            ("moulding.vacuum_casting", 3),
            (_M + "milling.cnc_3axis", 5),
            ("assembly.mechanical", 6),
            ("surface.spray.liquid", 4),
        ),
    ),
    "die_casting": ShopType(
        "压铸",
        "Die Casting",
        "Druckguss",
        (
            ("casting.die.aluminium", 35),
            ("casting.die.zinc", 14),
            (_M + "milling.cnc_3axis", 20),
            (_M + "turning.cnc_lathe", 6),
            ("surface.sandblast", 8),
            ("surface.spray.powder", 8),
            ("moulding.tooling.injection_mould", 3),
            ("surface.polish", 6),
        ),
    ),
    "sheet": ShopType(
        "钣金制造",
        "Sheet Metal",
        "Blechbearbeitung",
        (
            ("sheet_metal.laser_cut.fiber", 24),
            ("sheet_metal.bend.press_brake", 24),
            ("sheet_metal.punch.turret", 9),
            ("welding.mig_mag", 10),
            ("welding.tig", 8),
            ("sheet_metal.laser_cut.tube", 5),
            ("sheet_metal.plasma_cut", 3),
            ("sheet_metal.waterjet_cut", 2),
            ("surface.spray.powder", 10),
            ("assembly.mechanical", 3),
        ),
    ),
    "stamping": ShopType(
        "五金冲压",
        "Metal Stamping",
        "Stanztechnik",
        (
            ("sheet_metal.stamping.progressive", 50),
            ("sheet_metal.bend.press_brake", 10),
            ("sheet_metal.laser_cut.fiber", 8),
            ("welding.mig_mag", 10),
            ("welding.laser", 4),
            ("surface.plate.zinc", 6),
            (_M + "edm.wire_fast", 6),
            ("surface.plate.nickel", 3),
            (_M + "grinding.surface", 3),
        ),
    ),
    "electronics": ShopType(
        "电子科技",
        "Electronic Technology",
        "Elektronik",
        (
            ("assembly.smt", 45),
            ("assembly.box_build", 20),
            ("assembly.harness", 18),
            ("assembly.mechanical", 10),
            ("moulding.injection.le_200t", 5),
        ),
    ),
    "additive": ShopType(
        "3D打印科技",
        "3D Printing Technology",
        "Additive Fertigung",
        (
            ("additive.fdm", 15),
            ("additive.sla", 28),
            ("additive.sls", 14),
            ("additive.mjf", 14),
            ("additive.slm", 15),
            ("moulding.vacuum_casting", 9),
            (_M + "milling.cnc_3axis", 5),
        ),
    ),
    "surface": ShopType(
        "表面处理",
        "Surface Treatment",
        "Oberflächentechnik",
        (
            ("surface.anodize.standard", 20),
            ("surface.anodize.hard", 9),
            ("surface.plate.zinc", 12),
            ("surface.plate.nickel", 9),
            ("surface.plate.electroless_ni", 8),
            ("surface.passivate", 8),
            ("surface.sandblast", 10),
            ("surface.polish", 10),
            ("surface.spray.powder", 9),
            ("surface.spray.liquid", 5),
        ),
    ),
    "heat_treat": ShopType(
        "热处理",
        "Heat Treatment",
        "Härterei",
        (("heat_treat.quench_temper", 40), ("heat_treat.carburize", 30), ("heat_treat.nitride", 30)),
    ),
    "welding": ShopType(
        "焊接结构",
        "Welded Structures",
        "Stahlbau",
        (
            ("welding.mig_mag", 33),
            ("welding.tig", 18),
            ("welding.laser", 10),
            ("welding.friction_stir", 5),
            (_M + "milling.gantry", 10),
            ("sheet_metal.laser_cut.fiber", 10),
            ("sheet_metal.bend.press_brake", 10),
            ("surface.sandblast", 4),
        ),
    ),
    "casting_forging": ShopType(
        "铸锻",
        "Casting & Forging",
        "Schmiedetechnik",
        (
            ("casting.investment", 35),
            ("forging.closed_die", 32),
            (_M + "turning.cnc_lathe", 15),
            ("heat_treat.quench_temper", 10),
            ("surface.sandblast", 8),
        ),
    ),
    "furniture": ShopType(
        "家具制造",
        "Furniture Manufacturing",
        "Möbelbau",
        (
            ("surface.spray.liquid", 35),
            ("surface.spray.powder", 15),
            (_M + "milling.cnc_3axis", 20),
            ("surface.sandblast", 10),
            ("surface.polish", 10),
            ("assembly.mechanical", 10),
        ),
    ),
}

# -- machines ------------------------------------------------------------------------------------------
# Material pools (taxonomy codes).
_AL = ("al_6061", "al_7075", "al_6063", "al_2a12", "al_5052")
_STEEL = ("steel_45", "q235", "steel_40cr", "steel_42crmo", "q355", "steel_20crmnti")
_SS = ("ss_304", "ss_316l", "ss_303", "ss_17_4ph")
_TOOL = ("tl_p20", "tl_h13", "tl_cr12mov")
_CU = ("cu_h62", "cu_hpb59_1", "cu_t2")
_PLASTIC_MACH = ("pom", "abs", "pa66_gf30", "peek", "pmma", "pc")
_MILL = (
    "al_6061",
    "steel_45",
    "ss_304",
    "al_7075",
    "pom",
    "q235",
    "ss_316l",
    "cu_h62",
    "steel_40cr",
    "al_6063",
    "abs",
    "steel_42crmo",
    "al_2a12",
    "pa66_gf30",
    "peek",
    "tl_p20",
    "cu_t2",
    "ss_303",
    "pmma",
)
_TURN = (
    "steel_45",
    "ss_304",
    "al_6061",
    "cu_hpb59_1",
    "ss_303",
    "steel_40cr",
    "cu_h62",
    "q235",
    "ss_316l",
    "steel_42crmo",
    "al_2a12",
    "pom",
    "steel_20crmnti",
    "ti_tc4",
)
_FIVE = ("al_7075", "al_6061", "ti_tc4", "ss_17_4ph", "ss_316l", "steel_42crmo", "al_2a12", "peek", "ti_ta2", "tl_h13")
_SHEET = ("steel_spcc", "q235", "ss_304", "al_5052", "q355", "ss_316l", "al_6061", "cu_h62", "cu_t2")
_INJ = ("abs", "pc", "pp", "pom", "pa66_gf30", "pmma", "peek")
_PLATE = ("q235", "steel_45", "steel_spcc", "cu_h62", "al_6061", "steel_40cr")


@dataclass(frozen=True)
class MachineSpec:
    models: tuple[str, ...]
    envelopes: tuple[tuple[float, float, float], ...]  # x, y, z in mm
    tolerances: tuple[float, ...]  # mm
    rate_cny: tuple[int, int]  # CNY per hour (whole yuan)
    setup_cny: tuple[int, int]  # setup fee range; 0 allowed
    materials: tuple[str, ...]
    mass_kg: tuple[float, float] | None = None
    source: str = "est."  # where the rate range comes from


def _spec(
    models: str,
    envelopes: Sequence[tuple[float, float, float]],
    tol: Sequence[float],
    *,
    rate: tuple[int, int],
    setup: tuple[int, int],
    materials: Sequence[str],
    mass: tuple[float, float] | None = None,
    source: str = "est.",
) -> MachineSpec:
    return MachineSpec(
        tuple(m.strip() for m in models.split("|")),
        tuple(envelopes),
        tuple(tol),
        rate,
        setup,
        tuple(materials),
        mass,
        source,
    )


# Injection moulding hourly rates by clamp force: DOMAIN.md section 3 [supremecredit], Shanghai, domestic
# presses: 80 t 35-45, 180 t 95-140, 200 t 110-160, 400 t 250-350 CNY/h. Below 80 t scaled proportionally,
# above 400 t extrapolated with the 200-400 t slope (est.).
_INJ_POINTS = ((80, 35.0, 45.0), (180, 95.0, 140.0), (200, 110.0, 160.0), (400, 250.0, 350.0))


def injection_rate_range(tonnes: int) -> tuple[int, int]:
    pts = _INJ_POINTS
    if tonnes <= pts[0][0]:
        f = tonnes / pts[0][0]
        return round(pts[0][1] * f), round(pts[0][2] * f)
    for (t0, lo0, hi0), (t1, lo1, hi1) in itertools.pairwise(pts):
        if tonnes <= t1:
            f = (tonnes - t0) / (t1 - t0)
            return round(lo0 + f * (lo1 - lo0)), round(hi0 + f * (hi1 - hi0))
    (t0, lo0, hi0), (t1, lo1, hi1) = pts[-2], pts[-1]
    return round(lo1 + (tonnes - t1) * (lo1 - lo0) / (t1 - t0)), round(hi1 + (tonnes - t1) * (hi1 - hi0) / (t1 - t0))


# Presses per injection leaf: (brand/model prefix, clamp force t, tie-bar spacing x, y, max mould height).
INJECTION_PRESSES: dict[str, tuple[tuple[str, int, float, float, float], ...]] = {
    "moulding.injection.le_200t": (
        ("海天 Haitian MA900", 90, 360, 360, 380),
        ("海天 Haitian MA1200", 120, 410, 410, 430),
        ("伊之密 Yizumi UN160A5", 160, 470, 470, 500),
        ("震雄 Chen Hsong JM178", 178, 470, 470, 500),
        ("ENGEL victory 80", 80, 360, 320, 350),
        ("海天 Haitian MA2000", 200, 510, 510, 540),
    ),
    "moulding.injection.t200_800": (
        ("海天 Haitian MA2500", 250, 570, 570, 570),
        ("海天 Haitian MA3800", 380, 730, 730, 730),
        ("伊之密 Yizumi UN470A5", 470, 780, 780, 780),
        ("力劲 LK FORZA 650", 650, 900, 860, 900),
        ("ENGEL duo 8050/800", 800, 1000, 900, 1000),
    ),
    "moulding.injection.gt_800t": (
        ("海天 Haitian JU10000", 1000, 1120, 1120, 1150),
        ("伊之密 Yizumi UN1300DP", 1300, 1330, 1250, 1300),
        ("海天 Haitian JU16500", 1650, 1500, 1400, 1500),
    ),
    "moulding.injection.two_shot": (
        ("海天 Haitian MA1600/2C", 160, 470, 470, 500),
        ("ENGEL duo combi 280", 280, 620, 620, 650),
        ("Arburg Allrounder 570 S 2K", 220, 570, 570, 600),
    ),
}

MACHINE_SPECS: dict[str, MachineSpec] = {
    # Machining: CNC 3-axis 50-200, 5-axis 200-500, EDM/laser-class 300-800 CNY/h [DOMAIN s3: yigurp, qilemodel].
    _M + "milling.cnc_3axis": _spec(
        "Haas VF-2 | Brother S700X1 | 海天精工 VMC850 | 纽威 Newway VM850 | 北京精雕 JDGR200 | Mazak VCN-530C"
        " | 大连机床 VDL-1000 | 宝鸡机床 VMC1160",
        ((800, 500, 550), (1000, 600, 600), (1100, 600, 600), (700, 400, 300), (500, 400, 300), (1300, 700, 650)),
        (0.01, 0.02, 0.03, 0.05),
        rate=(50, 200),
        setup=(0, 300),
        materials=_MILL,
        mass=(200, 1000),
        source="DOMAIN s3",
    ),
    _M + "milling.cnc_4axis": _spec(
        "Haas VF-2 + HRT210 | Brother S700X1 + 4th axis | 海天精工 VMC1060 + A轴 | Mazak VCN-530C + rotary",
        ((800, 500, 550), (1000, 600, 600), (700, 400, 300)),
        (0.01, 0.02, 0.03),
        rate=(120, 300),
        setup=(0, 300),
        materials=_MILL,
        mass=(100, 500),
    ),
    _M + "milling.cnc_5axis": _spec(
        "DMG MORI DMU 50 | Hermle C 42 U | GF Mikron MILL P 800 U | 科德 KDW KMC800U | 北京精雕 JDGR400"
        " | Mazak VARIAXIS i-700",
        ((650, 520, 475), (800, 800, 550), (500, 450, 400), (730, 850, 560)),
        (0.005, 0.01, 0.02),
        rate=(200, 500),
        setup=(200, 800),
        materials=_FIVE,
        mass=(100, 600),
        source="DOMAIN s3",
    ),
    _M + "milling.gantry": _spec(
        "海天精工 GMU 2518 | 纽威 PB2500 | Okuma MCR-A5C | 宁江 GMC3022 | 大连机床 GMC2060",
        ((2500, 1800, 800), (3000, 2200, 1000), (4000, 2500, 1000), (6000, 3000, 1200)),
        (0.02, 0.03, 0.05),
        rate=(200, 500),
        setup=(300, 1000),
        materials=_STEEL + _AL[:2] + ("ss_304",),
        mass=(3000, 20000),
    ),
    _M + "milling.manual": _spec(
        "X6132 万能铣床 | X5032 立式铣床 | Bridgeport Series I",
        ((1000, 300, 400), (1300, 320, 400)),
        (0.05, 0.1),
        rate=(40, 80),
        setup=(0, 100),
        materials=_STEEL[:3] + _AL[:2] + ("ss_304",),
        mass=(50, 500),
    ),
    _M + "turning.cnc_lathe": _spec(
        "Mazak QT-200 | Doosan Lynx 2100 | 沈阳机床 i5T3 | 大连机床 CKA6150 | 宝鸡机床 CK7520 | Haas ST-20",
        ((500, 300, 300), (600, 400, 400), (1000, 500, 500), (350, 250, 250)),
        (0.01, 0.02, 0.03),
        rate=(40, 120),
        setup=(0, 200),
        materials=_TURN,
        mass=(20, 500),
    ),
    _M + "turning.turn_mill": _spec(
        "Mazak INTEGREX i-200 | DMG MORI NTX 1000 | Okuma MULTUS B250II | 沈阳机床 HTM40100",
        ((1000, 600, 600), (800, 500, 500), (1500, 660, 660)),
        (0.005, 0.01, 0.02),
        rate=(150, 350),
        setup=(100, 500),
        materials=(*_TURN, "ti_tc4", "ss_17_4ph"),
        mass=(50, 600),
    ),
    _M + "turning.swiss": _spec(
        "Citizen L20 | Star SR-20J | Tsugami B0205 | Citizen L32",
        ((320, 20, 20), (320, 32, 32), (320, 26, 26)),
        (0.005, 0.01),
        rate=(80, 200),
        setup=(100, 400),
        materials=("ss_303", "cu_hpb59_1", "ss_304", "al_6061", "steel_45", "ti_tc4", "cu_h62", "ss_316l"),
        mass=(0.1, 2),
    ),
    _M + "turning.manual": _spec(
        "CA6140 普通车床 | C6132 | CW6163",
        ((1000, 400, 400), (1500, 630, 630)),
        (0.05, 0.1),
        rate=(30, 60),
        setup=(0, 100),
        materials=_TURN[:8],
        mass=(50, 500),
    ),
    _M + "grinding.surface": _spec(
        "Okamoto ACC-52DX | M7130 平面磨床 | 杭机 MGK7132 | Chevalier FSG-1224",
        ((500, 200, 300), (1000, 300, 400), (600, 300, 350)),
        (0.002, 0.005, 0.01),
        rate=(60, 150),
        setup=(0, 200),
        materials=_TOOL + _STEEL[:3] + _SS[:2],
        mass=(20, 300),
    ),
    _M + "grinding.cylindrical": _spec(
        "STUDER S33 | M1432B 万能外圆磨床 | 上海机床 MGB1420",
        ((1000, 320, 320), (650, 200, 200), (1500, 400, 400)),
        (0.002, 0.005),
        rate=(80, 180),
        setup=(0, 200),
        materials=_STEEL + _SS[:2] + _TOOL[1:],
        mass=(10, 150),
    ),
    _M + "edm.wire_slow": _spec(
        "Sodick AQ400L | GF AgieCharmilles CUT 200 | Mitsubishi MV1200R | Makino U3",
        ((400, 300, 250), (550, 350, 300), (600, 400, 300)),
        (0.002, 0.003, 0.005),
        rate=(300, 800),
        setup=(0, 300),
        materials=_TOOL + _CU[2:] + ("steel_45", "ti_tc4", "ss_304"),
        mass=(50, 500),
        source="DOMAIN s3",
    ),
    _M + "edm.wire_fast": _spec(
        "DK7740 中走丝 | DK7763 快走丝 | 苏州三光 DK7745",
        ((400, 500, 300), (630, 800, 400)),
        (0.01, 0.015, 0.02),
        rate=(60, 150),
        setup=(0, 100),
        materials=(*_TOOL, "steel_45", "ss_304"),
        mass=(100, 800),
    ),
    _M + "edm.sinker": _spec(
        "Sodick AG40L | Mitsubishi EA12V | GF FORM 200 | 汉霸 HB-450",
        ((400, 300, 250), (500, 400, 300), (600, 400, 350)),
        (0.005, 0.01),
        rate=(300, 800),
        setup=(0, 300),
        materials=(*_TOOL, "steel_45", "ti_tc4"),
        mass=(100, 1000),
        source="DOMAIN s3",
    ),
    # Sheet metal. Laser 400-1000 CNY/h [DOMAIN s3: hokkiencha]; envelope z = max plate thickness.
    "sheet_metal.laser_cut.fiber": _spec(
        "大族 Han's G3015HF 6 kW | Bystronic ByStar Fiber 3015 | TRUMPF TruLaser 3030 | 邦德 Bodor P3015 12 kW"
        " | 宏山 HSG GS3015",
        ((3000, 1500, 20), (4000, 2000, 25), (6000, 2500, 30), (3000, 1500, 12)),
        (0.05, 0.1, 0.2),
        rate=(400, 1000),
        setup=(0, 200),
        materials=_SHEET,
        mass=None,
        source="DOMAIN s3",
    ),
    "sheet_metal.laser_cut.tube": _spec(
        "大族 Han's P2060A | TRUMPF TruLaser Tube 5000 | 邦德 Bodor T230",
        ((6000, 220, 220), (6500, 160, 160)),
        (0.1, 0.2),
        rate=(300, 800),
        setup=(0, 300),
        materials=_SHEET[:6],
        mass=(10, 200),
    ),
    "sheet_metal.plasma_cut": _spec(
        "Hypertherm XPR300 数控等离子切割机 | 华远 HNC-1800W",
        ((3000, 1500, 50), (6000, 2500, 60)),
        (0.5, 1.0),
        rate=(150, 300),
        setup=(0, 200),
        materials=(*_STEEL[:2], "q355"),
    ),
    "sheet_metal.waterjet_cut": _spec(
        "Flow Mach 500 | 南京大地 DWJ2040",
        ((3000, 2000, 150), (4000, 2000, 200)),
        (0.1, 0.2),
        rate=(200, 500),
        setup=(0, 200),
        materials=(*_SHEET, "ti_tc4", "pmma"),
    ),
    "sheet_metal.punch.turret": _spec(
        "AMADA EM-2510NT | TRUMPF TruPunch 3000 | 亚威 HPH-3048",
        ((2500, 1250, 6), (3000, 1500, 6)),
        (0.1, 0.15),
        rate=(150, 300),
        setup=(0, 300),
        materials=_SHEET[:5],
    ),
    "sheet_metal.bend.press_brake": _spec(
        "AMADA HG-1303 | TRUMPF TruBend 5130 | 亚威 PBB-110/3100 | Bystronic Xpert 150",
        ((3100, 400, 10), (3200, 500, 12), (4000, 500, 16)),
        (0.1, 0.2, 0.5),
        rate=(80, 200),
        setup=(0, 300),
        materials=_SHEET,
        mass=(5, 200),
    ),
    "sheet_metal.stamping.progressive": _spec(
        "扬力 JH21-160 | AIDA NC1-200 | Komatsu E2W-300 | 扬力 JH25-250",
        ((1600, 800, 6), (2000, 900, 8), (2500, 1000, 10)),
        (0.02, 0.05, 0.1),
        rate=(150, 400),
        setup=(200, 1500),
        materials=(*_SHEET[:5], "cu_t2"),
        mass=(0.01, 5),
    ),
    # Additive: machine-hour rates not in DOMAIN (it prices per gram / per part) - est.
    "additive.fdm": _spec(
        "Stratasys F370 | Raise3D Pro3 | Bambu Lab X1E",
        ((355, 254, 355), (300, 300, 300), (256, 256, 256)),
        (0.2, 0.3),
        rate=(20, 60),
        setup=(0, 50),
        materials=("pla", "abs", "pc", "pa12", "peek"),
    ),
    "additive.sla": _spec(
        "联泰 UnionTech Lite 600 | Formlabs Form 3L | 3D Systems ProX 800",
        ((600, 600, 400), (335, 200, 300), (650, 750, 550)),
        (0.05, 0.1),
        rate=(60, 150),
        setup=(0, 100),
        materials=("resin_sla",),
    ),
    "additive.sls": _spec(
        "EOS P 396 | 华曙 Farsoon HT403P | 3D Systems sPro 140",
        ((340, 340, 600), (400, 400, 450), (550, 550, 460)),
        (0.1, 0.2, 0.3),
        rate=(150, 400),
        setup=(0, 200),
        materials=("pa12",),
    ),
    "additive.mjf": _spec(
        "HP Jet Fusion 5200 | HP Jet Fusion 4200",
        ((380, 284, 380),),
        (0.2, 0.3),
        rate=(200, 450),
        setup=(0, 200),
        materials=("pa12",),
    ),
    "additive.slm": _spec(
        "EOS M 290 | 铂力特 BLT-S310 | SLM 280 | 华曙 Farsoon FS273M",
        ((250, 250, 325), (250, 250, 400), (280, 280, 365), (275, 275, 355)),
        (0.05, 0.1),
        rate=(400, 1200),
        setup=(300, 1000),
        materials=("al_alsi10mg", "ss_316l", "ti_tc4", "ss_17_4ph", "tl_h13"),
    ),
    # Moulding: injection presses get their own rate from the clamp force (see INJECTION_PRESSES).
    "moulding.vacuum_casting": _spec(
        "MK Mini 4/01 | 真空注型机 VC-900",
        ((900, 800, 800), (600, 600, 600)),
        (0.1, 0.2, 0.3),
        rate=(80, 200),
        setup=(200, 800),
        materials=("abs", "pp", "pc", "pmma"),
    ),
    "moulding.tooling.injection_mould": _spec(
        "模具车间 (CNC + EDM) | 模具钳工装配台",
        ((800, 600, 500), (1200, 800, 700)),
        (0.005, 0.01, 0.02),
        rate=(150, 300),
        setup=(0, 500),
        materials=(*_TOOL, "steel_45"),
    ),
    # Casting / forging - est.
    "casting.die.aluminium": _spec(
        "力劲 LK DCC400 | 伊之密 Yizumi DM500 | Bühler Carat 140 | 力劲 LK DCC800",
        ((600, 500, 300), (800, 700, 400), (1000, 900, 500)),
        (0.05, 0.1, 0.2),
        rate=(200, 600),
        setup=(500, 2000),
        materials=("al_adc12",),
        mass=(0.5, 30),
    ),
    "casting.die.zinc": _spec(
        "力劲 LK DCC160 热室 | 伊之密 Yizumi DH88",
        ((250, 200, 150), (400, 300, 200)),
        (0.03, 0.05),
        rate=(80, 200),
        setup=(200, 800),
        materials=("zn_zamak3",),
        mass=(0.01, 2),
    ),
    "casting.investment": _spec(
        "硅溶胶精铸线 silica-sol line | 水玻璃精铸线 water-glass line",
        ((300, 300, 300), (600, 400, 400)),
        (0.1, 0.2, 0.3),
        rate=(100, 300),
        setup=(300, 1500),
        materials=("ss_304", "ss_316l", "steel_45", "steel_42crmo", "ss_17_4ph", "q235"),
        mass=(0.01, 50),
    ),
    "forging.closed_die": _spec(
        "3150 t 热模锻压力机 | 1600 t 摩擦压力机 | 2500 t 电动螺旋压力机",
        ((400, 400, 200), (600, 500, 300), (800, 600, 400)),
        (0.5, 1.0),
        rate=(200, 600),
        setup=(500, 3000),
        materials=("steel_45", "steel_40cr", "steel_42crmo", "steel_20crmnti", "al_6061", "ti_tc4"),
        mass=(0.5, 100),
    ),
    # Welding - est.
    "welding.mig_mag": _spec(
        "Panasonic YD-350GR3 + 焊接机器人 | Fronius TPS 400i | 时代 NB-500 | Lincoln Power Wave S500",
        ((2000, 1000, 1000), (3000, 1500, 1500), (6000, 2500, 2000)),
        (0.5, 1.0),
        rate=(50, 120),
        setup=(0, 200),
        materials=("q235", "q355", "steel_45"),
        mass=(10, 5000),
    ),
    "welding.tig": _spec(
        "Miller Dynasty 280 | 奥太 WSME-315 | Fronius MagicWave 230i",
        ((1500, 1000, 800), (2000, 1000, 1000)),
        (0.3, 0.5),
        rate=(60, 150),
        setup=(0, 200),
        materials=("ss_304", "ss_316l", "al_5052", "al_6061", "ti_tc4"),
        mass=(1, 500),
    ),
    "welding.laser": _spec(
        "IPG YLS-3000 机器人激光焊 | 大族 Han's 3 kW 激光焊接工作站",
        ((1500, 1000, 800), (2000, 1200, 1000)),
        (0.1, 0.2),
        rate=(200, 500),
        setup=(0, 300),
        materials=("ss_304", "al_6061", "steel_spcc", "q235", "cu_t2"),
        mass=(1, 300),
    ),
    "welding.friction_stir": _spec(
        "赛福斯特 FSW-LM-BM16 龙门搅拌摩擦焊 | ESAB LEGIO 5UT",
        ((3000, 1500, 500), (6000, 2000, 600)),
        (0.2, 0.3),
        rate=(300, 700),
        setup=(200, 800),
        materials=("al_6061", "al_6063", "al_5052", "al_7075"),
        mass=(10, 2000),
    ),
    # Heat treatment (furnace-hour) - est.; envelope = effective furnace zone.
    "heat_treat.quench_temper": _spec(
        "Ipsen 多用炉 | 网带式淬火回火线 | 井式淬火炉 RJ2-75",
        ((900, 600, 600), (1200, 800, 800), (2000, 600, 500)),
        (0.1, 0.2),
        rate=(100, 300),
        setup=(100, 500),
        materials=("steel_45", "steel_40cr", "steel_42crmo", "tl_cr12mov"),
        mass=(100, 2000),
    ),
    "heat_treat.carburize": _spec(
        "井式渗碳炉 RQ3-90 | Ipsen 可控气氛多用炉",
        ((600, 600, 900), (900, 600, 600)),
        (0.1, 0.2),
        rate=(150, 400),
        setup=(100, 500),
        materials=("steel_20crmnti",),
        mass=(100, 1500),
    ),
    "heat_treat.nitride": _spec(
        "离子氮化炉 LDMC-75 | 气体氮化炉 RN-90",
        ((800, 800, 1200), (600, 600, 900)),
        (0.01, 0.02),
        rate=(150, 400),
        setup=(100, 500),
        materials=("steel_42crmo", "tl_h13", "steel_40cr", "tl_cr12mov"),
        mass=(50, 1500),
    ),
    # Surface treatment (line-hour) - est.; envelope = largest part / tank.
    "surface.spray.powder": _spec(
        "喷粉线 powder coating line | 静电喷涂房",
        ((2000, 1000, 1500), (4000, 1500, 2000)),
        (0.05, 0.1),
        rate=(100, 300),
        setup=(100, 500),
        materials=("q235", "steel_spcc", "al_6063", "al_adc12", "al_5052"),
        mass=(1, 200),
    ),
    "surface.spray.liquid": _spec(
        "水帘喷漆房 | 自动喷漆线",
        ((2000, 1000, 1500), (3000, 1500, 2000)),
        (0.05, 0.1),
        rate=(100, 250),
        setup=(100, 500),
        materials=("abs", "pc", "al_6061", "q235", "steel_spcc"),
        mass=(1, 200),
    ),
    "surface.anodize.standard": _spec(
        "阳极氧化线 anodizing line",
        ((2000, 800, 1200), (3000, 1000, 1500)),
        (0.01,),
        rate=(80, 250),
        setup=(100, 500),
        materials=_AL,
        mass=(1, 200),
    ),
    "surface.anodize.hard": _spec(
        "硬质阳极氧化线 hard anodizing line",
        ((1500, 600, 1000), (2000, 800, 1200)),
        (0.01,),
        rate=(150, 350),
        setup=(100, 500),
        materials=("al_6061", "al_7075", "al_2a12"),
        mass=(1, 100),
    ),
    "surface.plate.zinc": _spec(
        "滚镀锌线 barrel zinc line | 挂镀锌线 rack zinc line",
        ((1500, 600, 1000), (2000, 800, 1200)),
        (0.01,),
        rate=(100, 250),
        setup=(100, 500),
        materials=_PLATE[:3],
        mass=(1, 100),
    ),
    "surface.plate.nickel": _spec(
        "电镀镍线 nickel plating line",
        ((1200, 600, 900), (1500, 600, 1000)),
        (0.01,),
        rate=(100, 250),
        setup=(100, 500),
        materials=_PLATE,
        mass=(1, 100),
    ),
    "surface.plate.electroless_ni": _spec(
        "化学镍线 electroless nickel line",
        ((1000, 600, 800), (1200, 800, 900)),
        (0.005, 0.01),
        rate=(120, 250),
        setup=(100, 500),
        materials=("al_6061", "steel_45", "q235", "ss_304", "cu_h62"),
        mass=(1, 80),
    ),
    "surface.passivate": _spec(
        "不锈钢钝化线 passivation line",
        ((1500, 600, 1000),),
        (0.01,),
        rate=(60, 150),
        setup=(0, 300),
        materials=_SS,
        mass=(1, 200),
    ),
    "surface.sandblast": _spec(
        "自动喷砂机 | 喷砂房 blast room",
        ((1200, 1000, 1000), (3000, 2000, 2000)),
        (0.1, 0.2),
        rate=(50, 120),
        setup=(0, 200),
        materials=_AL[:3] + _SS[:2] + _STEEL[:2] + ("al_adc12",),
        mass=(1, 2000),
    ),
    "surface.polish": _spec(
        "抛光工作台 | 自动抛光机 | 振动研磨机",
        ((800, 600, 500), (1200, 800, 600)),
        (0.01, 0.02),
        rate=(50, 120),
        setup=(0, 200),
        materials=_SS[:2] + _AL[:2] + _CU[:1] + ("ti_tc4",),
        mass=(0.1, 50),
    ),
    # Assembly (line-hour) - est.
    "assembly.mechanical": _spec(
        "装配线 assembly line | 装配工位 workbench",
        ((1500, 800, 1000), (2000, 1000, 1200)),
        (0.1, 0.2),
        rate=(40, 100),
        setup=(0, 200),
        materials=(),
        mass=(1, 200),
    ),
    "assembly.smt": _spec(
        "Fuji NXT III SMT line | Yamaha YSM20R line | Panasonic NPM-D3 line | Juki RS-1R line",
        ((510, 460, 30), (610, 510, 30), (330, 250, 30)),
        (0.03, 0.05),
        rate=(150, 500),
        setup=(200, 1000),
        materials=(),
    ),
    "assembly.box_build": _spec(
        "整机装配线 box-build line | 老化测试区 burn-in area",
        ((1200, 800, 800), (2000, 1000, 1000)),
        (0.2, 0.5),
        rate=(50, 120),
        setup=(0, 300),
        materials=(),
        mass=(1, 100),
    ),
    "assembly.harness": _spec(
        "Komax Zeta 630 | 线束装配板 harness boards",
        ((3000, 1200, 300), (2000, 1000, 200)),
        (0.5, 1.0),
        rate=(40, 100),
        setup=(0, 200),
        materials=("cu_t2",),
        mass=(0.1, 20),
    ),
}
for _code, _presses in INJECTION_PRESSES.items():
    _ranges = [injection_rate_range(t) for _, t, *_rest in _presses]
    MACHINE_SPECS[_code] = MachineSpec(
        models=tuple(p[0] for p in _presses),
        envelopes=tuple((p[2], p[3], p[4]) for p in _presses),
        tolerances=(0.02, 0.05, 0.1),
        rate_cny=(min(r[0] for r in _ranges), max(r[1] for r in _ranges)),
        setup_cny=(200, 1500),  # mould change (est.)
        materials=_INJ,
        mass_kg=(0.005, 10),
        source="DOMAIN s3 (clamp-force table)",
    )

# -- lab services (DOMAIN.md section 4 standards; section 3 prices per item [yjsshisi]) ------------------


@dataclass(frozen=True)
class LabSpec:
    standards: tuple[str, ...]
    price_cny: tuple[int, int]  # per sample, before the accreditation (CNAS/CMA report) surcharge
    capacity: tuple[int, int]  # samples per day
    turnaround: tuple[int, int]  # working days
    sample: str
    source: str = "est."


LAB_SPECS: dict[str, LabSpec] = {
    "testing.mechanical.tensile": LabSpec(
        ("GB/T 228.1-2021", "ISO 6892-1:2019", "ASTM E8/E8M-24"),
        (400, 800),
        (20, 120),
        (2, 5),
        "Machined specimens per the standard, 3 per condition.",
        "DOMAIN s3/s4",
    ),
    # GB/T 229 is 'unverified' in DOMAIN s4; the 2020 edition is general knowledge.
    "testing.mechanical.impact": LabSpec(
        ("GB/T 229-2020", "ISO 148-1:2016"),
        (300, 600),
        (20, 150),
        (2, 5),
        "10 x 10 x 55 mm Charpy V-notch specimens, 3 per temperature.",
    ),
    "testing.hardness.brinell": LabSpec(
        ("GB/T 231.1-2018",), (200, 500), (50, 200), (2, 3), "Flat, ground test surface.", "DOMAIN s3/s4"
    ),
    "testing.hardness.rockwell": LabSpec(
        ("GB/T 230.1-2018",),
        (200, 500),
        (50, 200),
        (2, 3),
        "Flat, parallel faces; thickness at least 10 x indentation depth.",
        "DOMAIN s3/s4",
    ),
    "testing.hardness.vickers": LabSpec(
        ("GB/T 4340.1-2024",), (200, 500), (30, 150), (2, 4), "Polished cross-section or surface.", "DOMAIN s3/s4"
    ),
    "testing.dimensional.cmm": LabSpec(
        ("GB/T 1182-2018 (GD&T per drawing)",),
        (300, 1000),
        (10, 40),
        (2, 4),
        "Part with 2D/3D drawing and datum scheme.",
    ),
    "testing.dimensional.vision": LabSpec(
        ("GB/T 1182-2018 (GD&T per drawing)",),
        (150, 400),
        (20, 120),
        (2, 3),
        "Flat parts up to 400 x 300 mm with drawing.",
    ),
    "testing.corrosion.salt_spray_nss": LabSpec(
        ("GB/T 10125-2021", "ISO 9227:2022", "ASTM B117-19"),
        (300, 600),
        (10, 60),
        (3, 7),
        "Coated panels or parts; exposure hours as agreed.",
        "DOMAIN s3/s4",
    ),
    "testing.corrosion.salt_spray_cass": LabSpec(
        ("GB/T 10125-2021", "ISO 9227:2022"),
        (300, 600),
        (10, 40),
        (3, 7),
        "Decorative Cu-Ni-Cr or anodised parts.",
        "DOMAIN s3/s4",
    ),
    "testing.ndt.rt": LabSpec(
        ("GB/T 3323.1-2019",),
        (200, 800),
        (10, 60),
        (2, 5),
        "Welded joints; thickness and joint type in the request.",
        "DOMAIN s4",
    ),
    "testing.ndt.ut": LabSpec(("NB/T 47013.3-2015",), (200, 600), (20, 100), (2, 4), "Accessible scanning surfaces."),
    "testing.ndt.mt": LabSpec(("NB/T 47013.4-2015",), (150, 400), (30, 150), (2, 3), "Ferromagnetic parts only."),
    "testing.ndt.pt": LabSpec(("NB/T 47013.5-2015",), (150, 400), (30, 150), (2, 3), "Clean, dry, non-porous surface."),
    # GB/T 4336 is 'unverified' in DOMAIN s4; 2016 edition is general knowledge.
    "testing.chemical.oes": LabSpec(
        ("GB/T 4336-2016",),
        (800, 1500),
        (20, 120),
        (2, 4),
        "Flat sample at least 20 mm across, 5 mm thick.",
        "DOMAIN s3",
    ),
    "testing.chemical.metallography": LabSpec(
        ("GB/T 13298-2015",), (400, 900), (10, 50), (3, 7), "Sample with the region of interest marked."
    ),
    "testing.coating.thickness": LabSpec(
        ("GB/T 4956-2003", "ISO 2178:2016"),
        (100, 300),
        (50, 200),
        (2, 3),
        "Coated parts on a magnetic steel substrate.",
    ),
}
ACCREDITATION_SURCHARGE_CNY = (200, 500)  # CNAS/CMA report stamp [DOMAIN s3: yjsshisi]

# -- weekly plans (local wall clock) -------------------------------------------------------------------


def _days(days: Sequence[int], start: str, end: str) -> list[dict[str, Any]]:
    return [{"weekday": d, "start": start, "end": end} for d in days]


WEEKDAYS = (0, 1, 2, 3, 4)
WEEKLY_PLANS: dict[str, list[dict[str, Any]]] = {
    "one_shift": _days(WEEKDAYS, "08:00", "17:00"),
    "one_shift_sat": _days((*WEEKDAYS, 5), "08:00", "17:00"),
    "two_shifts": _days(WEEKDAYS, "08:00", "24:00"),
    "two_shifts_sat": _days(WEEKDAYS, "08:00", "24:00") + _days((5,), "08:00", "17:00"),
    "24_6": _days((*WEEKDAYS, 5), "00:00", "24:00"),
    "de_one_shift": _days(WEEKDAYS, "07:00", "16:00"),
    "de_two_shifts": _days(WEEKDAYS, "06:00", "22:00"),
    "lab_weekdays": _days(WEEKDAYS, "08:30", "17:30"),
    "lab_sat": _days((*WEEKDAYS, 5), "08:30", "17:30"),
}
CN_PLAN_WEIGHTS = (("one_shift", 25), ("one_shift_sat", 25), ("two_shifts", 25), ("two_shifts_sat", 10), ("24_6", 15))
DE_PLAN_WEIGHTS = (("de_one_shift", 60), ("de_two_shifts", 40))

# Machines per supplier: (low, high, weight). Small job shops dominate.
MACHINES_PER_SUPPLIER = ((1, 3, 30), (4, 8, 40), (9, 20, 22), (21, 60, 8))
AVG_MACHINES_PER_SUPPLIER = sum((lo + hi) / 2 * w for lo, hi, w in MACHINES_PER_SUPPLIER) / sum(
    w for *_, w in MACHINES_PER_SUPPLIER
)
LAB_SERVICES_PER_LAB = (3, 14)
AVG_SERVICES_PER_LAB = 7.3  # measured: 3-10 tests per lab, some under two standards

# -- names ---------------------------------------------------------------------------------------------

NAME_WORDS = (
    ("精工", "Jinggong"),
    ("华创", "Huachuang"),
    ("鑫达", "Xinda"),
    ("恒信", "Hengxin"),
    ("宏远", "Hongyuan"),
    ("永盛", "Yongsheng"),
    ("金泰", "Jintai"),
    ("博远", "Boyuan"),
    ("立信", "Lixin"),
    ("瑞丰", "Ruifeng"),
    ("德力", "Deli"),
    ("天成", "Tiancheng"),
    ("汇通", "Huitong"),
    ("联创", "Lianchuang"),
    ("卓越", "Zhuoyue"),
    ("精诚", "Jingcheng"),
    ("盛达", "Shengda"),
    ("新锐", "Xinrui"),
    ("海达", "Haida"),
    ("铭泰", "Mingtai"),
    ("众合", "Zhonghe"),
    ("嘉利", "Jiali"),
    ("富强", "Fuqiang"),
    ("科瑞", "Kerui"),
    ("兴隆", "Xinglong"),
    ("锦程", "Jincheng"),
    ("东升", "Dongsheng"),
    ("百川", "Baichuan"),
    ("凯达", "Kaida"),
    ("佳和", "Jiahe"),
    ("三和", "Sanhe"),
    ("远航", "Yuanhang"),
    ("华昌", "Huachang"),
    ("金鼎", "Jinding"),
    ("广益", "Guangyi"),
)
SURNAMES_ZH = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾"
GIVEN_ZH = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "秀英",
    "建华",
    "志强",
    "海燕",
    "晓东",
    "丽",
    "俊",
    "鹏",
    "婷",
    "浩然",
    "子涵",
    "欣怡",
    "宇轩",
)
FIRST_DE = (
    "Anna",
    "Lukas",
    "Julia",
    "Felix",
    "Laura",
    "Jonas",
    "Sarah",
    "Maximilian",
    "Lena",
    "Tobias",
    "Katrin",
    "Stefan",
    "Miriam",
    "Jan",
)
SURNAMES_DE = (
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Braun",
)
ROADS_ZH = ("工业大道", "科技路", "兴业路", "创新路", "长江路", "人民路", "发展大道", "富民路", "园区一路", "金港路")
STREETS_DE = (
    "Industriestraße",
    "Gewerbestraße",
    "Robert-Bosch-Straße",
    "Daimlerstraße",
    "Siemensstraße",
    "Max-Planck-Straße",
)
BUYER_WORDS = (
    ("智能设备", "Smart Devices"),
    ("汽车电子", "Automotive Electronics"),
    ("医疗器械", "Medical Devices"),
    ("新能源科技", "New Energy Technology"),
    ("机器人", "Robotics"),
    ("家电", "Home Appliances"),
    ("无人机", "Drones"),
    ("仪器仪表", "Instruments"),
    ("储能科技", "Energy Storage"),
)
BUYER_WORDS_DE = ("Robotik", "Medizintechnik", "Antriebstechnik", "Sensorik", "Anlagenbau", "E-Mobility")
MS_ISSUERS = (  # (issuer, accreditation body) for management-system certificates (est.)
    ("中国质量认证中心 CQC", "CNAS"),
    ("方圆标志认证集团 CQM", "CNAS"),
    ("SGS United Kingdom Ltd", "UKAS"),
    ("TÜV SÜD Management Service GmbH", "DAkkS"),
    ("Bureau Veritas Certification", "UKAS"),
    ("DNV Business Assurance", "RvA"),
)
