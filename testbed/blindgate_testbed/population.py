"""The synthetic population: wallets and their customers, acquirers and their merchants.

Everything is derived from one seed with :class:`random.Random`, so a demo run, a test and
a benchmark that use the same seed see the same people. The values are made up, but shaped
like the real thing (E.164 phones, Korean and Thai national-id layouts, addresses, device ids,
IPs from the 198.18.0.0/15 benchmarking range), because the privacy scanner must find them in
the encodings a careless system would use.

``population.csv`` is the ground truth of every personal value the reference wallets hold:
one row per customer, one column per kind of personal value (see :data:`PERSONAL_KINDS`).
Money is integer minor units in the wallet's currency.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The kinds of personal value a wallet holds about a customer; population.csv has one column each.
PERSONAL_KINDS: tuple[str, ...] = (
    "customer_id",
    "full_name",
    "phone",
    "email",
    "national_id",
    "device_id",
    "ip",
    "address",
    "payment_code",
)

PAYMENT_CODE_DIGITS = 24  # as Alipay+ user-presented codes: a 6-digit wallet prefix + 18 digits


@dataclass(frozen=True)
class Customer:
    wallet_id: str
    customer_id: str
    full_name: str
    phone: str
    email: str
    national_id: str
    device_id: str
    ip: str
    address: str
    payment_code: str
    balance: int  # minor units of the wallet's currency

    def personal_values(self) -> dict[str, str]:
        return {kind: getattr(self, kind) for kind in PERSONAL_KINDS}


@dataclass(frozen=True)
class Wallet:
    wallet_id: str
    name: str
    currency: str
    region: str
    payment_code_prefix: str
    customers: tuple[Customer, ...]


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    mcc: str
    terminals: tuple[str, ...]


@dataclass(frozen=True)
class Merchant:
    merchant_id: str
    name: str
    mcc: str
    region: str
    stores: tuple[Store, ...]


@dataclass(frozen=True)
class Acquirer:
    acquirer_id: str
    name: str
    currency: str
    region: str
    merchants: tuple[Merchant, ...]


@dataclass(frozen=True)
class Population:
    seed: int
    wallets: tuple[Wallet, ...]
    acquirers: tuple[Acquirer, ...]

    def customers(self) -> list[Customer]:
        return [c for w in self.wallets for c in w.customers]

    def wallet(self, wallet_id: str) -> Wallet:
        return next(w for w in self.wallets if w.wallet_id == wallet_id)

    def acquirer(self, acquirer_id: str) -> Acquirer:
        return next(a for a in self.acquirers if a.acquirer_id == acquirer_id)


# --- how each region's people look -------------------------------------------------------------

_KR_FAMILY = ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han", "Shin")
_KR_GIVEN = ("Minjun", "Seoyeon", "Jiho", "Haeun", "Doyun", "Jiwoo", "Eunwoo", "Suah", "Hyunwoo", "Yerin")
_KR_STREETS = ("Teheran-ro", "Sejong-daero", "Olympic-ro", "Hangang-daero", "Dosan-daero", "Yanghwa-ro")
_KR_DISTRICTS = ("Gangnam-gu", "Jongno-gu", "Mapo-gu", "Songpa-gu", "Seocho-gu", "Yongsan-gu")
_TH_FAMILY = ("Srisuk", "Wongsawat", "Chaiyaporn", "Rattanakorn", "Boonmee", "Saetang", "Kittisak")
_TH_GIVEN = ("Somchai", "Malee", "Anan", "Kanya", "Niran", "Ploy", "Prasert", "Siriporn", "Thanawat")
_TH_STREETS = ("Sukhumvit Rd", "Silom Rd", "Rama IV Rd", "Phahonyothin Rd", "Ratchadaphisek Rd")
_TH_DISTRICTS = ("Khlong Toei", "Bang Rak", "Pathum Wan", "Chatuchak", "Huai Khwang", "Watthana")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _device_id(rng: random.Random) -> str:
    hex_ = f"{rng.getrandbits(128):032x}"
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}".upper()


def _ip(rng: random.Random, used: set[str]) -> str:
    while True:
        # 198.18.0.0/15, last octet 100..254 so that no address is a prefix of another one.
        ip = f"198.{rng.randint(18, 19)}.{rng.randint(0, 255)}.{rng.randint(100, 254)}"
        if ip not in used:
            used.add(ip)
            return ip


def _korean(rng: random.Random, n: int) -> dict[str, str]:
    family, given = rng.choice(_KR_FAMILY), rng.choice(_KR_GIVEN)
    birth = f"{rng.randint(60, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    return {
        "full_name": f"{given} {family}",
        "phone": f"+8210{_digits(rng, 8)}",
        "email": f"{given.lower()}.{family.lower()}{n:05d}@mail.example.kr",
        "national_id": f"{birth}-{rng.choice('12')}{_digits(rng, 6)}",
        "address": f"{rng.randint(1, 999)} {rng.choice(_KR_STREETS)}, {rng.choice(_KR_DISTRICTS)}, "
        f"Seoul {_digits(rng, 5)}",
    }


def _thai(rng: random.Random, n: int) -> dict[str, str]:
    family, given = rng.choice(_TH_FAMILY), rng.choice(_TH_GIVEN)
    d = _digits(rng, 13)
    return {
        "full_name": f"{given} {family}",
        "phone": f"+66{rng.choice('689')}{_digits(rng, 8)}",
        "email": f"{given.lower()}.{family.lower()}{n:05d}@mail.example.th",
        "national_id": f"{d[0]}-{d[1:5]}-{d[5:10]}-{d[10:12]}-{d[12]}",
        "address": f"{rng.randint(1, 999)}/{rng.randint(1, 99)} {rng.choice(_TH_STREETS)}, "
        f"{rng.choice(_TH_DISTRICTS)}, Bangkok {_digits(rng, 5)}",
    }


_SG_FAMILY = ("Tan", "Lim", "Ng", "Wong", "Goh", "Chua", "Koh", "Teo", "Ong")
_SG_GIVEN = ("Wei Ming", "Hui Min", "Jun Jie", "Xin Yi", "Zhi Hao", "Siew Ling", "Kai Wen", "Mei Ling")
_SG_STREETS = ("Ang Mo Kio Ave 3", "Tampines St 21", "Bedok North Rd", "Jurong West St 42", "Toa Payoh Lor 1")


def _singaporean(rng: random.Random, n: int) -> dict[str, str]:
    family, given = rng.choice(_SG_FAMILY), rng.choice(_SG_GIVEN)
    return {
        "full_name": f"{family} {given}",
        "phone": f"+65{rng.choice('89')}{_digits(rng, 7)}",
        "email": f"{given.replace(' ', '').lower()}.{family.lower()}{n:05d}@mail.example.sg",
        "national_id": f"{rng.choice('ST')}{_digits(rng, 7)}{rng.choice('ABCDEFGHIZJ')}",
        "address": f"Blk {rng.randint(1, 999)} {rng.choice(_SG_STREETS)}, #{rng.randint(2, 30):02d}-"
        f"{rng.randint(1, 999):03d}, Singapore {_digits(rng, 6)}",
    }


_WALLETS = (
    # wallet id, name, currency, region, payment-code prefix, person maker, usual balance (minor units)
    ("HANPAY", "HanPay", "KRW", "KR", "281011", _korean, 3_000_000),
    ("SIAMPAY", "SiamPay", "THB", "TH", "281022", _thai, 8_000_000),
    # A wallet in an acquirer's own currency, so that some payments are same-currency.
    ("LIONPAY", "LionPay", "SGD", "SG", "281033", _singaporean, 300_000),
)
_ACQUIRERS = (
    ("MERLIONACQ", "Merlion Acquiring", "SGD", "SG", ("Hawker", "Kopi", "Books", "Pharmacy", "Optics")),
    ("SAKURAACQ", "Sakura Acquiring", "JPY", "JP", ("Ramen", "Drugstore", "Camera", "Kimono", "Sushi")),
)
_MCC = ("5812", "5912", "5942", "5946", "5411")
LOW_BALANCE_SHARE = 0.08  # customers whose balance makes a few payments decline


def wallet_templates(count: int) -> list[tuple[Any, ...]]:
    """``count`` wallets: the three above, then copies of them under new ids and code prefixes
    (``HANPAY2``, prefix ``280400``, ...), so a network of any size has distinct routing."""
    chosen = []
    for index in range(count):
        wallet_id, name, currency, region, prefix, make_person, balance = _WALLETS[index % len(_WALLETS)]
        if index >= len(_WALLETS):
            copy = index // len(_WALLETS) + 1
            wallet_id, name, prefix = f"{wallet_id}{copy}", f"{name} {copy}", f"28{index + 1:02d}00"
        chosen.append((wallet_id, name, currency, region, prefix, make_person, balance))
    return chosen


def acquirer_templates(count: int) -> list[tuple[Any, ...]]:
    """``count`` acquirers: the two above, then copies under new ids (``MERLIONACQ2``, ...)."""
    chosen = []
    for index in range(count):
        acquirer_id, name, currency, region, kinds = _ACQUIRERS[index % len(_ACQUIRERS)]
        if index >= len(_ACQUIRERS):
            copy = index // len(_ACQUIRERS) + 1
            acquirer_id, name = f"{acquirer_id}{copy}", f"{name} {copy}"
        chosen.append((acquirer_id, name, currency, region, kinds))
    return chosen


MAX_PARTNERS = 20  # per role: payment-code prefixes stay six digits and distinct


def generate_population(
    seed: int = 20261124,
    customers_per_wallet: int = 200,
    merchants_per_acquirer: int = 5,
    wallets: int = len(_WALLETS),
    acquirers: int = len(_ACQUIRERS),
) -> Population:
    """Build the whole population deterministically from ``seed`` (the same seed gives the first
    wallets and acquirers the same people whatever the counts)."""
    assert customers_per_wallet > 0 and merchants_per_acquirer > 0
    assert 1 <= wallets <= MAX_PARTNERS and 1 <= acquirers <= MAX_PARTNERS
    rng = random.Random(seed)
    used_ips: set[str] = set()
    used_codes: set[str] = set()
    made_wallets = []
    for wallet_id, name, currency, region, prefix, make_person, balance in wallet_templates(wallets):
        customers = []
        for n in range(customers_per_wallet):
            while (code := prefix + _digits(rng, PAYMENT_CODE_DIGITS - len(prefix))) in used_codes:
                pass
            used_codes.add(code)
            low = rng.random() < LOW_BALANCE_SHARE
            customers.append(
                Customer(
                    wallet_id=wallet_id,
                    customer_id=f"2188{_digits(rng, 12)}",
                    device_id=_device_id(rng),
                    ip=_ip(rng, used_ips),
                    payment_code=code,
                    balance=balance // 1000 if low else balance,
                    **make_person(rng, n),
                )
            )
        made_wallets.append(Wallet(wallet_id, name, currency, region, prefix, tuple(customers)))
    made_acquirers = []
    for acquirer_id, name, currency, region, kinds in acquirer_templates(acquirers):
        merchants = []
        for m in range(merchants_per_acquirer):
            kind, mcc = kinds[m % len(kinds)], _MCC[m % len(_MCC)]
            copy = acquirer_id.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # "" for the originals
            merchant_id = f"{acquirer_id[:3]}{copy}M{m:04d}"
            stores = tuple(
                Store(
                    store_id=f"{merchant_id}S{s}",
                    name=f"{kind} {region} #{s}",
                    mcc=mcc,
                    terminals=tuple(f"{merchant_id}S{s}T{t}" for t in range(2)),
                )
                for s in range(2)
            )
            merchants.append(Merchant(merchant_id, f"{kind} House {m}", mcc, region, stores))
        made_acquirers.append(Acquirer(acquirer_id, name, currency, region, tuple(merchants)))
    return Population(seed, tuple(made_wallets), tuple(made_acquirers))


def write_population_csv(population: Population, path: Path) -> None:
    """Write the ground truth of every personal value: one row per customer, one column per kind."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(PERSONAL_KINDS))
        writer.writeheader()
        for customer in population.customers():
            writer.writerow(customer.personal_values())
