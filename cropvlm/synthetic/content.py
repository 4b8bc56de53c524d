"""Fake but realistic field values: companies, addresses, dates, amounts, ids, line items.

Every function takes a `random.Random` so a document is a pure function of its seed.
Printed strings are returned exactly as they will be drawn, because the gold answer is
the printed text (SROIE convention), not a normalised value.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

_NAME_A = (
    "SOON HUAT", "INDAH", "KEDAI", "MEGAH", "SUNRISE", "GOLDEN", "PERFECT", "UNIHAKKA",
    "BOOK TA.K", "OJC", "AEON", "MR. D.I.Y.", "SANYU", "TAN WOON", "GARDENIA", "ABC",
    "Northwind", "Blue Harbor", "Pinecrest", "Summit", "Redwood", "Atlas", "Keystone",
    "Müller", "Schneider", "Fischer", "Lakeside", "Brightline", "Ironbridge", "Oakridge",
)
_NAME_B = (
    "STATIONERY", "HARDWARE", "TRADING", "RESTAURANT", "BAKERY", "MACHINERY", "ENTERPRISE",
    "GIFT & HOME DECO", "MINI MARKET", "FOOD", "Consulting", "Logistics", "Analytics",
    "Supplies", "Engineering", "Printing", "Systems", "Design Studio", "Electrical", "Services",
)
# Suffix decides the "country": currency, address style and amount style follow from it.
_SUFFIXES = {
    "my": ("SDN BHD", "SDN. BHD.", "ENTERPRISE", "TRADING", "(M) SDN BHD", ""),
    "us": ("LLC", "Inc.", "Corp.", "Co.", "Ltd."),
    "de": ("GmbH", "AG", "GmbH & Co. KG"),
    "uk": ("Ltd", "Limited", "PLC"),
}
# Base-14 fonts are Latin-1 only: no euro sign, so German documents print "EUR".
_CURRENCY = {"my": ("RM", "MYR"), "us": ("$", "USD"), "de": ("EUR",), "uk": ("£", "GBP")}

_STREETS = {
    "my": ("JALAN DEDAP", "JALAN PERMAS", "JALAN TUN ABDUL RAZAK", "JLN MUTIARA", "JALAN PUTRA"),
    "us": ("Main Street", "Oak Avenue", "Maple Drive", "Market St.", "Harbor Blvd"),
    "de": ("Hauptstraße", "Bahnhofstraße", "Lindenweg", "Gartenstraße", "Schillerstraße"),
    "uk": ("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane"),
}
_CITIES = {
    "my": (("81100", "JOHOR BAHRU", "JOHOR"), ("50450", "KUALA LUMPUR", "W.P."),
           ("47301", "PETALING JAYA", "SELANGOR"), ("10200", "GEORGETOWN", "PULAU PINANG")),
    "us": (("94107", "San Francisco", "CA"), ("10001", "New York", "NY"),
           ("60601", "Chicago", "IL"), ("78701", "Austin", "TX")),
    "de": (("10115", "Berlin", ""), ("80331", "München", ""), ("50667", "Köln", "")),
    "uk": (("SW1A 1AA", "London", ""), ("M1 1AE", "Manchester", ""), ("LS1 4DY", "Leeds", "")),
}
_ITEMS = (
    "A4 PAPER 80GSM", "BALL PEN BLUE", "STAPLER NO.10", "NASI LEMAK", "TEH TARIK", "KOPI O",
    "MEE GORENG", "ROTI CANAI", "PVC PIPE 1/2\"", "CABLE TIE 8\"", "LED BULB 9W", "SCREW 4X25",
    "Consulting hours", "Software licence", "Support plan (monthly)", "Freight charges",
    "Installation", "Design work", "Printer toner", "Office chair", "USB-C cable 2m",
    "Cleaning service", "Website hosting", "Training session", "Spare parts kit",
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS_LONG = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)


@dataclass(frozen=True)
class Party:
    """A company as printed: name line, address lines, and a few distractor numbers."""

    name: str
    address: tuple[str, ...]  # printed lines; the gold address joins them with spaces
    phone: str
    reg_no: str
    region: str  # "my" | "us" | "de" | "uk"; other languages' documents: the country code ("NL", "CH")


@dataclass(frozen=True)
class Item:
    qty: int
    description: str
    unit: float  # unit price in currency units

    @property
    def amount(self) -> float:
        return round(self.qty * self.unit, 2)


def party(rng: random.Random, region: str | None = None) -> Party:
    region = region or rng.choice(("my", "my", "us", "de", "uk"))
    first, second = rng.choice(_NAME_A), rng.choice(_NAME_B)
    suffix = rng.choice(_SUFFIXES[region])
    if suffix in second.upper():  # no "TRADING TRADING"
        suffix = ""
    name = f"{first} {second} {suffix}".strip()
    # Malaysian shops print names in capitals; elsewhere words are title case.
    name = name.upper() if region == "my" else f"{first.title()} {second.title()} {suffix}".strip()
    return Party(name, address(rng, region), phone(rng, region), reg_no(rng, region), region)


def address(rng: random.Random, region: str) -> tuple[str, ...]:
    street = rng.choice(_STREETS[region])
    postcode, city, state = rng.choice(_CITIES[region])
    no = rng.randint(1, 250)
    if region == "my":
        lines = [f"NO. {no}, {street} {rng.randint(1, 30)},", f"TAMAN {rng.choice(_NAME_A)} JAYA,",
                 f"{postcode} {city},", state if state.endswith(".") else f"{state}."]
        if rng.random() < 0.4:  # two-line variant: address wraps differently per shop
            lines = [f"{lines[0]} {lines[1]}", f"{lines[2]} {lines[3]}"]
        return tuple(lines)
    if region == "us":
        suite = f", Suite {rng.randint(100, 900)}" if rng.random() < 0.4 else ""
        return (f"{no} {street}{suite}", f"{city}, {state} {postcode}")
    if region == "de":
        return (f"{street} {no}", f"{postcode} {city}")
    return (f"{no} {street}", city, postcode)


def phone(rng: random.Random, region: str) -> str:
    d = lambda n: "".join(str(rng.randint(0, 9)) for _ in range(n))  # noqa: E731
    return {"my": f"TEL: 0{rng.randint(3, 9)}-{d(3)} {d(4)}", "us": f"Tel. ({d(3)}) {d(3)}-{d(4)}",
            "de": f"Tel. +49 {d(2)} {d(6)}", "uk": f"Tel: 0{d(3)} {d(3)} {d(4)}"}[region]


def reg_no(rng: random.Random, region: str) -> str:
    if region == "my":
        return rng.choice((f"(CO. REG: {rng.randint(100000, 999999)}-{rng.choice('ADHKPTUVWX')})",
                           f"GST ID: {rng.randint(10**11, 10**12 - 1):012d}"))
    if region == "de":
        return f"USt-IdNr.: DE{rng.randint(10**8, 10**9 - 1)}"
    if region == "uk":
        return f"VAT Reg No: GB {rng.randint(100, 999)} {rng.randint(1000, 9999)} {rng.randint(10, 99)}"
    return f"EIN: {rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}"


def currency(rng: random.Random, region: str) -> str:
    return rng.choice(_CURRENCY[region])


def date(rng: random.Random) -> dt.date:
    return dt.date(2015, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 9))


def format_date(rng: random.Random, day: dt.date, region: str) -> str:
    """The date as a shop's till or an accounting package would print it."""
    d, m, y, mon = day.day, day.month, day.year, _MONTHS[day.month - 1]
    styles = [f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{d} {mon} {y}", f"{d:02d}-{m:02d}-{y}",
              f"{d} {_MONTHS_LONG[m - 1]} {y}", f"{d:02d}/{m:02d}/{y % 100:02d}", f"{d:02d}-{mon.upper()}-{y}"]
    if region == "us":
        styles += [f"{m:02d}/{d:02d}/{y}", f"{mon} {d}, {y}", f"{_MONTHS_LONG[m - 1]} {d}, {y}"]
    if region == "de":
        styles += [f"{d:02d}.{m:02d}.{y}", f"{d:02d}.{m:02d}.{y % 100:02d}", f"{d}. {_MONTHS_LONG[m - 1]} {y}"]
    return rng.choice(styles)


def amount_style(rng: random.Random, region: str) -> str:
    """'comma' 1,234.50 | 'plain' 1234.50 | 'eu' 1.234,50 (German invoices only).

    Other languages' documents also print 'eu_plain' 1234,50 | 'space' 1 234,50 | 'swiss' 1'234.50."""
    if region == "de" and rng.random() < 0.6:
        return "eu"
    return rng.choice(("comma", "comma", "plain"))


def format_amount(value: float, style: str) -> str:
    text = f"{value:,.2f}"
    thousands, decimal = {"plain": ("", "."), "eu": (".", ","), "eu_plain": ("", ","), "space": (" ", ","),
                          "swiss": ("'", ".")}.get(style, (",", "."))
    return text.replace(",", "_").replace(".", decimal).replace("_", thousands)


def with_currency(rng: random.Random, number: str, cur: str) -> tuple[str, int]:
    """Printed amount and the index where the bare number starts (gold box covers the number)."""
    style = rng.random()
    if not cur or style < 0.3:
        return number, 0
    if cur == "EUR" and style < 0.55:
        return f"{number} {cur}", 0
    sep = "" if cur in ("$", "£") or (cur == "RM" and style < 0.6) else " "
    return f"{cur}{sep}{number}", len(cur) + len(sep)


def invoice_number(rng: random.Random) -> str:
    n = rng.randint(1, 99999)
    return rng.choice((f"INV-{n:05d}", f"{rng.randint(2015, 2024)}-{n:04d}", f"{n:06d}",
                       f"INV{rng.randint(10**6, 10**7 - 1)}", f"{rng.choice('ABCDEFGHKMST')}{n:05d}",
                       f"CS{rng.randint(10**7, 10**8 - 1)}", str(n)))


def items(rng: random.Random, n: int, big: bool, names: tuple[str, ...] = _ITEMS) -> list[Item]:
    """`big`: invoice-sized prices (tens to thousands) rather than shop-till prices."""
    out = []
    for _ in range(n):
        unit = rng.choice((rng.uniform(1, 60), rng.uniform(20, 400), rng.uniform(100, 2500)) if big
                          else (rng.uniform(0.5, 15), rng.uniform(1, 60)))
        qty = rng.choice((1, 1, 1, 2, 3, 5, 10)) if not big else rng.choice((1, 1, 2, 4, 8, 12, 40))
        if unit > 100:  # nobody buys forty laptops on one line of a sample invoice
            qty = min(qty, 4)
        out.append(Item(qty, rng.choice(names), round(unit, 2)))
    return out


def time_text(rng: random.Random) -> str:
    h, m, s = rng.randint(8, 22), rng.randint(0, 59), rng.randint(0, 59)
    return rng.choice((f"{h:02d}:{m:02d}", f"{h:02d}:{m:02d}:{s:02d}", f"{(h - 1) % 12 + 1}:{m:02d} {'PM' if h >= 12 else 'AM'}"))
