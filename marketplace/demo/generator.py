"""Pure, deterministic generation of the synthetic market (suppliers, then labs, then buyers).

``random.Random(seed)`` drives every choice, ids included, so the same arguments (and ``now``) give identical
rows; only ``next_free_at`` and timestamps depend on ``now``. The data comes from
:mod:`marketplace.demo.catalogue`, the shared row writers from :mod:`marketplace.demo.builder`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from marketplace.demo.builder import (
    MarketBuilder,
    lab_next_free,
    machine_next_free,
    seeded_uuid,
    weighted_choice,
)
from marketplace.demo.catalogue import (
    ACCREDITATION_SURCHARGE_CNY,
    AEROSPACE_CLUSTERS,
    AUTOMOTIVE_CLUSTERS,
    BUYER_WORDS,
    BUYER_WORDS_DE,
    CLUSTERS,
    CN_CLUSTERS,
    CN_PLAN_WEIGHTS,
    DE_PLAN_WEIGHTS,
    INJECTION_PRESSES,
    LAB_SERVICES_PER_LAB,
    LAB_SPECS,
    MACHINE_SPECS,
    MACHINES_PER_SUPPLIER,
    MEDICAL_CLUSTERS,
    MS_ISSUERS,
    NAME_WORDS,
    SEED_EMAIL_DOMAIN,
    SHOP_TYPES,
    SURNAMES_DE,
    Cluster,
    injection_rate_range,
)
from marketplace.demo.rows import GeneratedMarket, Row


class SiteRef(NamedTuple):
    """Where a listing is placed: its organisation, site (and when the site was created) and cluster."""

    org_id: uuid.UUID
    site_id: uuid.UUID
    created: datetime
    cluster: Cluster


class MarketGenerator(MarketBuilder):
    """The three kinds of organisation, each with its sites, certificates and listings."""

    # suppliers
    def supplier(self, i: int) -> None:
        rng = self.rng
        cluster: Cluster = rng.choices(CLUSTERS, weights=self.cluster_weights)[0]
        shop_key = weighted_choice(rng, cluster.shops)
        shop = SHOP_TYPES[shop_key]
        word_zh, word_en = rng.choice(NAME_WORDS)
        cn = cluster.country == "CN"
        if cn:
            name = f"{cluster.name_zh}{word_zh}{shop.word_zh} {cluster.name_en} {word_en} {shop.word_en}"
            legal = f"{cluster.name_zh}{word_zh}{shop.word_zh}有限公司"
        else:
            surname = rng.choice(SURNAMES_DE)
            name = legal = f"{surname} {shop.word_de} GmbH"
        region = cluster.region_codes[0]
        uscc = self.uscc(region) if cn else None
        roles = ["supplier", "buyer"] if rng.random() < 0.3 else ["supplier"]
        org_id, verified = self.org(
            name,
            legal=legal,
            country=cluster.country,
            uscc=uscc,
            roles=roles,
            email=f"supplier{i}@{SEED_EMAIL_DOMAIN}",
            locale="zh-CN" if cn else "en",
        )
        self.m.suppliers += 1

        lo, hi = weighted_choice(rng, [((lo_, hi_), w) for lo_, hi_, w in MACHINES_PER_SUPPLIER])
        n_machines = rng.randint(lo, hi)
        n_sites = 2 if n_machines >= 12 and rng.random() < 0.3 else 1
        plan_weights = CN_PLAN_WEIGHTS if cn else DE_PLAN_WEIGHTS
        sites = []
        for s in range(n_sites):
            site_name = (
                f"{cluster.name_zh}{'二厂' if s else '工厂'} {cluster.name_en} plant {s + 1}"
                if cn
                else f"Werk {s + 1} {cluster.name_en}"
            )
            site_id, site_created = self.site(org_id, cluster, name=site_name, after=verified)
            sites.append((site_id, site_created, weighted_choice(rng, plan_weights)))
        self.supplier_certificates(org_id, cluster, shop_key=shop_key, uscc=uscc)
        processes = shop.processes
        for _ in range(n_machines):
            site_id, site_created, plan = rng.choice(sites)
            if rng.random() < 0.15:
                plan = weighted_choice(rng, plan_weights)
            self.machine(
                SiteRef(org_id, site_id, site_created, cluster),
                code=weighted_choice(rng, processes),
                plan=plan,
            )

    def supplier_certificates(self, org_id: uuid.UUID, cluster: Cluster, *, shop_key: str, uscc: str | None) -> None:
        rng = self.rng
        scope = f"Design and manufacture: {SHOP_TYPES[shop_key].word_en.lower()}"

        def number(prefix: str, system: str) -> str:
            return f"{prefix}{rng.randint(10, 99)}{system}{rng.randint(10000, 99999)}R{rng.randint(0, 3)}"

        def issuer() -> tuple[str, str]:
            if cluster.country != "CN":
                return rng.choice(MS_ISSUERS[2:])
            return rng.choice(MS_ISSUERS[:2] if rng.random() < 0.6 else MS_ISSUERS)

        def management_system(standard: str, cert_number: str) -> None:
            # The caller draws the number first, then the issuer is drawn here: the seeded draw order.
            iss, body = issuer()
            self.certificate(org_id, standard=standard, number=cert_number, issuer=iss, body=body, scope=scope, years=3)

        if rng.random() < 0.85:
            management_system("ISO 9001", number("001", "Q"))
        if rng.random() < 0.3:
            management_system("ISO 14001", number("002", "E"))
        if rng.random() < 0.15:
            management_system("ISO 45001", number("003", "S"))
        # Sector certificates: (clusters, shop types, share, standard, number, body (None: the issuer's), scope).
        sectors: tuple[tuple[frozenset[str], tuple[str, ...], float, str, Callable[[], str], str | None, str], ...] = (
            (
                AUTOMOTIVE_CLUSTERS,
                ("stamping", "die_casting", "casting_forging", "welding", "turning", "cnc", "heat_treat"),
                0.35,
                "IATF 16949",
                lambda: f"IATF 0{rng.randint(400000, 599999)}",
                "IATF",
                "Automotive production parts",
            ),
            (
                AEROSPACE_CLUSTERS,
                ("precision", "cnc", "heat_treat", "casting_forging"),
                0.3,
                "AS9100",
                lambda: f"AS9100D-{rng.randint(10000, 99999)}",
                None,
                "Machining of aerospace components",
            ),
            (
                MEDICAL_CLUSTERS,
                ("cnc", "precision", "injection", "electronics", "turning"),
                0.12,
                "ISO 13485",
                lambda: number("MD", "Q"),
                None,
                "Components for medical devices",
            ),
        )
        for clusters, shops, share, standard, make_number, sector_body, sector_scope in sectors:
            # Same draw order as ever: the share, then the issuer, then the number.
            if cluster.key in clusters and shop_key in shops and rng.random() < share:
                iss, body = rng.choice(MS_ISSUERS[2:])
                self.certificate(
                    org_id,
                    standard=standard,
                    number=make_number(),
                    issuer=iss,
                    body=sector_body or body,
                    scope=sector_scope,
                    years=3,
                )

    def machine(self, site: SiteRef, *, code: str, plan: str) -> None:
        org_id, site_id, site_created, cluster = site
        rng = self.rng
        spec = MACHINE_SPECS[code]
        presses = INJECTION_PRESSES.get(code)
        if presses is not None:
            model, tonnes, ex, ey, ez = rng.choice(presses)
            envelope = (float(ex), float(ey), float(ez))
            rate_lo, rate_hi = injection_rate_range(tonnes)
            model = f"{model} {tonnes} t"
        else:
            model = rng.choice(spec.models)
            envelope = tuple(float(v) for v in rng.choice(spec.envelopes))  # type: ignore[assignment]
            rate_lo, rate_hi = spec.rate_cny
        x, y, z = envelope
        big, mid, small = sorted(envelope, reverse=True)
        cn = cluster.country == "CN"
        rate_yuan = rng.randint(rate_lo, rate_hi)
        if rate_yuan >= 20:
            rate_yuan = min(rate_hi, max(rate_lo, 5 * round(rate_yuan / 5)))
        setup_yuan = 0 if rng.random() < 0.35 else 10 * round(rng.randint(*spec.setup_cny) / 10)
        if cn:
            currency, hourly, setup_fee = "CNY", rate_yuan * 100, setup_yuan * 100
        else:  # est.: German job-shop rates, EUR cents
            currency = "EUR"
            hourly = max(4500, round(rate_yuan * 0.55) * 100)
            setup_fee = round(setup_yuan * 0.3) * 100
        slot = rng.choice((30, 60))
        min_booking = rng.choice((60, 60, 120, 120, 180, 240))
        buffer = rng.choice((0, 0, 15, 30))
        setup_min = rng.choice((0, 0, 15, 30, 60))
        pool = spec.materials
        if pool:
            k = min(len(pool), rng.randint(2, 7))
            idx = sorted(rng.sample(range(len(pool)), k))
            materials = [pool[j] for j in idx]
        else:
            materials = []
        tol = rng.choice(spec.tolerances)
        mass = None
        if spec.mass_kg is not None:
            mlo, mhi = spec.mass_kg
            mass = round(rng.uniform(mlo, mhi), 3 if mhi < 10 else 0)
        name_zh, name_en = self.names[code]
        title = f"{model} {name_zh}"[:200]
        operator = rng.random() < 0.85
        # A factory writes its listing in its own language: Chinese sites in Chinese, the others in English.
        if cn:
            description = f"{name_zh}。加工行程 {x:g} × {y:g} × {z:g} 毫米，公差 ±{tol:g} 毫米。" + (
                "配操作员。" if operator else ""
            )
        else:
            description = f"{name_en}. Working envelope {x:g} x {y:g} x {z:g} mm, tolerance ±{tol:g} mm." + (
                " Operator included." if operator else ""
            )
        key = (plan, cluster.timezone, slot, min_booking, setup_min, buffer)
        if key not in self.next_free_cache:
            self.next_free_cache[key] = machine_next_free(
                plan, cluster.timezone, slot=slot, min_booking=min_booking, setup=setup_min, buffer=buffer, now=self.now
            )
        created, published = self.listed_times(site_created)
        self.listing(
            (
                seeded_uuid(rng),
                org_id,
                site_id,
                "machine",
                title,
                description,
                "published",
                [code],
                materials,
                currency,
                x,
                y,
                z,
                big,
                mid,
                small,
                mass,
                tol,
                hourly,
                setup_fee,
                min_booking,
                slot,
                buffer,
                setup_min,
                operator,
            ),
            plan=plan,
            lab_columns=(None,) * 6,
            next_free=self.next_free_cache[key],
            created=created,
            published=published,
        )
        self.m.machines += 1

    # labs
    def lab(self, i: int) -> None:
        rng = self.rng
        cluster: Cluster = rng.choices(CN_CLUSTERS, weights=[c.weight for c in CN_CLUSTERS])[0]
        word_zh, word_en = rng.choice(NAME_WORDS)
        name = f"{cluster.name_zh}{word_zh}检测 {cluster.name_en} {word_en} Testing"
        legal = f"{cluster.name_zh}{word_zh}检测技术有限公司"
        region = cluster.region_codes[0]
        uscc = self.uscc(region, kind="12" if rng.random() < 0.15 else "91")  # some are public institutions
        org_id, verified = self.org(
            name,
            legal=legal,
            country="CN",
            uscc=uscc,
            roles=["supplier"],
            email=f"lab{i}@{SEED_EMAIL_DOMAIN}",
            locale="zh-CN",
        )
        self.m.labs += 1
        site_id, site_created = self.site(
            org_id, cluster, name=f"{cluster.name_zh}实验室 {cluster.name_en} laboratory", after=verified
        )
        has_cnas = rng.random() < 0.8
        if has_cnas:
            self.certificate(
                org_id,
                standard="ISO/IEC 17025",
                number=f"CNAS L{rng.randint(1000, 19999)}",
                issuer="中国合格评定国家认可委员会 CNAS",
                body="CNAS",
                scope="Mechanical, metallographic and corrosion testing",
                years=6,
                site_id=site_id,
            )
        if rng.random() < 0.9:
            cma_number = f"{rng.randint(17, 24)}{rng.randint(10, 35)}{rng.randint(10**7, 10**8 - 1)}"
            self.certificate(
                org_id,
                standard="CMA",
                number=cma_number,
                issuer=f"{cluster.province_zh}市场监督管理局",
                body="CMA",
                scope="检验检测机构资质认定",
                years=6,
                site_id=site_id,
            )
        if rng.random() < 0.5:
            iss, body = MS_ISSUERS[0]
            self.certificate(
                org_id,
                standard="ISO 9001",
                number=f"001{rng.randint(10, 99)}Q{rng.randint(10000, 99999)}R1",
                issuer=iss,
                body=body,
                scope="Testing services",
                years=3,
            )
        plan = "lab_sat" if rng.random() < 0.3 else "lab_weekdays"
        codes = list(LAB_SPECS)
        k = rng.randint(3, min(10, len(codes)))
        chosen = sorted(rng.sample(range(len(codes)), k))
        count = 0
        for j in chosen:
            code = codes[j]
            spec = LAB_SPECS[code]
            stds = list(spec.standards)
            n_std = 1 if len(stds) == 1 or rng.random() < 0.6 else 2
            for std in rng.sample(stds, n_std):
                if count >= LAB_SERVICES_PER_LAB[1]:
                    break
                self.lab_service(
                    SiteRef(org_id, site_id, site_created, cluster),
                    code=code,
                    standard=std,
                    plan=plan,
                    accredited=has_cnas and rng.random() < 0.75,
                )
                count += 1

    def lab_service(self, site: SiteRef, *, code: str, standard: str, plan: str, accredited: bool) -> None:
        org_id, site_id, site_created, cluster = site
        rng = self.rng
        spec = LAB_SPECS[code]
        price = 10 * round(rng.randint(*spec.price_cny) / 10)
        if accredited:
            price += 10 * round(rng.randint(*ACCREDITATION_SURCHARGE_CNY) / 10)
        capacity = 10 * round(rng.randint(*spec.capacity) / 10) or spec.capacity[0]
        name_zh, name_en = self.names[code]
        title = f"{name_zh} {standard} — {name_en}"[:200]
        if cluster.country == "CN":
            description = f"{name_zh}，依据 {standard}。" + ("出具 CNAS/CMA 认可报告。" if accredited else "")
        else:
            description = f"{name_en} to {standard}." + (" CNAS/CMA accredited report." if accredited else "")
        created, published = self.listed_times(site_created)
        head: Row = (seeded_uuid(rng), org_id, site_id, "lab_service", title, description, "published", [code], [])
        self.listing(
            (*head, "CNY", *(None,) * 15),  # envelope .. operator_included do not apply to lab services
            plan=plan,
            lab_columns=(standard, accredited, price * 100, rng.randint(*spec.turnaround), capacity, spec.sample),
            next_free=lab_next_free(plan, cluster.timezone, self.now),
            created=created,
            published=published,
        )
        self.m.lab_services += 1

    # buyers
    def buyer(self, i: int) -> None:
        rng = self.rng
        if rng.random() < 0.85:
            cluster: Cluster = rng.choices(CN_CLUSTERS, weights=[c.weight for c in CN_CLUSTERS])[0]
            word_zh, word_en = rng.choice(NAME_WORDS)
            kind_zh, kind_en = rng.choice(BUYER_WORDS)
            name = f"{cluster.name_zh}{word_zh}{kind_zh} {cluster.name_en} {word_en} {kind_en}"
            legal = f"{cluster.name_zh}{word_zh}{kind_zh}有限公司"
            self.org(
                name,
                legal=legal,
                country="CN",
                uscc=self.uscc(cluster.region_codes[0]),
                roles=["buyer"],
                email=f"buyer{i}@{SEED_EMAIL_DOMAIN}",
                locale=rng.choice(("zh-CN", "zh-CN", "en")),
            )
        else:
            name = f"{rng.choice(SURNAMES_DE)} {rng.choice(BUYER_WORDS_DE)} GmbH"
            self.org(
                name,
                legal=name,
                country="DE",
                uscc=None,
                roles=["buyer"],
                email=f"buyer{i}@{SEED_EMAIL_DOMAIN}",
                locale="en",
            )
        self.m.buyers += 1


def generate_market(
    *, suppliers: int, labs: int, buyers: int, seed: int, now: datetime | None = None, password_hash: str = ""
) -> GeneratedMarket:
    """Pure, deterministic generation: the same arguments (and ``now``) give identical rows."""
    if min(suppliers, labs, buyers) < 0:
        raise ValueError("counts must be >= 0")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    gen = MarketGenerator(seed, now.astimezone(UTC))
    gen.password_hash = password_hash
    for i in range(suppliers):
        gen.supplier(i)
    for i in range(labs):
        gen.lab(i)
    for i in range(buyers):
        gen.buyer(i)
    return gen.m
