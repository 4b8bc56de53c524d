"""Printed values of a European country in one language: companies, addresses, ids, dates, money.

A `Locale` is a (country, language) pair such as Swiss German: "8001 Zürich", "CHF 1'234.50",
"12.03.2024", "Muster AG". Like `content.py`, every function takes a `random.Random` and
returns strings exactly as printed. English documents do not come through here.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass

from cropvlm.synthetic import content
from cropvlm.synthetic.content import Item, Party, items

_MONTHS = {
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
}
# Date patterns per language, repeated entries weigh more; fields d m y mon (month name).
_DATES = {
    "nl": ("{d:02d}-{m:02d}-{y}", "{d:02d}-{m:02d}-{y}", "{d}-{m}-{y}", "{d} {mon} {y}", "{y}-{m:02d}-{d:02d}",
           "{d:02d}/{m:02d}/{y}"),
    "de": ("{d:02d}.{m:02d}.{y}", "{d:02d}.{m:02d}.{y}", "{d}. {mon} {y}", "{d:02d}.{m:02d}.{yy:02d}",
           "{y}-{m:02d}-{d:02d}"),
    "fr": ("{d:02d}/{m:02d}/{y}", "{d:02d}/{m:02d}/{y}", "{d} {mon} {y}", "{d:02d}.{m:02d}.{y}",
           "{y}-{m:02d}-{d:02d}", "{d:02d}-{m:02d}-{y}"),
    "es": ("{d:02d}/{m:02d}/{y}", "{d:02d}/{m:02d}/{y}", "{d} de {mon} de {y}", "{d:02d}-{m:02d}-{y}",
           "{y}-{m:02d}-{d:02d}", "{d}/{m}/{y}"),
    "it": ("{d:02d}/{m:02d}/{y}", "{d:02d}/{m:02d}/{y}", "{d} {mon} {y}", "{d:02d}.{m:02d}.{y}",
           "{d:02d}-{m:02d}-{y}", "{y}-{m:02d}-{d:02d}"),
}
_SURNAMES = {
    "nl": ("De Vries", "Jansen", "Van Dijk", "Bakker", "Visser", "Smit", "Meijer", "De Boer", "Mulder", "Peeters"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Wagner", "Hoffmann", "Huber", "Keller"),
    "fr": ("Martin", "Bernard", "Dubois", "Durand", "Lefèvre", "Moreau", "Laurent", "Girard", "Roux", "Fontaine"),
    "es": ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Fernández", "Ruiz", "Navarro", "Ortega"),
    "it": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Greco", "Conti"),
}
_BRANDS = {
    "nl": ("Noordlicht", "Polderkracht", "Zeewind", "Hollandia", "Duinzicht", "Groenveld"),
    "de": ("Nordwerk", "Alpenblick", "Rheinland", "Isartal", "Lindenhof", "Sonnenberg"),
    "fr": ("Horizon", "Azur", "Atelier du Lac", "Les Tilleuls", "Bel Air", "Solstice"),
    "es": ("Iberia", "Mediterránea", "Sol Naciente", "Costa Verde", "Levante", "Alhambra"),
    "it": ("Aurora", "Italsistemi", "Vesuvio", "Dolomiti", "Arcobaleno", "Laguna"),
}
# Trades for company names; the surname goes before them in nl/de, after them in fr/es/it.
_TRADES = {
    "nl": ("Installatietechniek", "Logistiek", "Bouw", "Adviesgroep", "Drukkerij", "ICT Diensten", "Transport",
           "Schilderwerken", "Techniek", "Groothandel"),
    "de": ("Haustechnik", "Logistik", "Elektrotechnik", "Bau", "Druckerei", "Software", "Metallbau",
           "Gebäudereinigung", "Beratung", "Handel"),
    "fr": ("Informatique", "Transports", "Bâtiment", "Conseil", "Imprimerie", "Électricité", "Nettoyage",
           "Menuiserie", "Services", "Distribution"),
    "es": ("Construcciones", "Distribuciones", "Transportes", "Instalaciones", "Consultores", "Gráficas",
           "Suministros", "Reformas", "Servicios", "Comercial"),
    "it": ("Impianti", "Logistica", "Costruzioni", "Consulenze", "Tipografia", "Elettrica", "Informatica",
           "Forniture", "Servizi", "Commerciale"),
}
_SHOPS = {
    "nl": ("Bakkerij", "Slagerij", "Supermarkt", "Drogisterij", "Café", "Bouwmarkt"),
    "de": ("Bäckerei", "Metzgerei", "Supermarkt", "Drogerie", "Café", "Baumarkt"),
    "fr": ("Boulangerie", "Boucherie", "Supermarché", "Pharmacie", "Café", "Tabac Presse"),
    "es": ("Panadería", "Carnicería", "Supermercado", "Farmacia", "Bar", "Ferretería"),
    "it": ("Panificio", "Macelleria", "Supermercato", "Farmacia", "Bar", "Ferramenta"),
}
_SERVICES = {
    "nl": ("Installatiewerkzaamheden", "Advies (uren)", "Onderhoudscontract", "Transportkosten", "Materialen",
           "Softwarelicentie", "Drukwerk folders A5", "Schoonmaakdienst", "Voorrijkosten", "Projectmanagement"),
    "de": ("Montagearbeiten", "Beratung (Std.)", "Wartungsvertrag", "Frachtkosten", "Material", "Softwarelizenz",
           "Druck Flyer A5", "Gebäudereinigung", "Anfahrtspauschale", "Projektleitung"),
    "fr": ("Main d'oeuvre", "Conseil (heures)", "Contrat de maintenance", "Frais de transport", "Fournitures",
           "Licence logiciel", "Impression flyers A5", "Prestation de nettoyage", "Déplacement", "Gestion de projet"),
    "es": ("Mano de obra", "Consultoría (horas)", "Contrato de mantenimiento", "Portes", "Material",
           "Licencia de software", "Impresión folletos A5", "Servicio de limpieza", "Desplazamiento",
           "Dirección de proyecto"),
    "it": ("Manodopera", "Consulenza (ore)", "Contratto di manutenzione", "Spese di trasporto", "Materiale",
           "Licenza software", "Stampa volantini A5", "Servizio di pulizia", "Diritto di chiamata",
           "Gestione progetto"),
}
_GROCERIES = {
    "nl": ("BROOD VOLKOREN", "MELK HALFVOL", "KOFFIE", "KAAS JONG BELEGEN", "APPELS 1KG", "TOMATEN", "EIEREN 10ST"),
    "de": ("BRÖTCHEN", "VOLLMILCH 1L", "KAFFEE", "BUTTER 250G", "ÄPFEL 1KG", "TOMATEN", "EIER 10ST"),
    "fr": ("BAGUETTE", "CROISSANT", "CAFE CREME", "LAIT DEMI-ECREME", "POMMES 1KG", "FROMAGE", "OEUFS X12"),
    "es": ("PAN DE BARRA", "CAFE CON LECHE", "AGUA MINERAL", "TOMATES", "ACEITE OLIVA 1L", "HUEVOS 12U", "QUESO"),
    "it": ("PANE COMUNE", "CORNETTO", "CAFFE", "ACQUA MINERALE", "MOZZARELLA", "POMODORI", "UOVA 6PZ"),
}
# Currency text around the number ({n}), weighted by repetition, per language and for CHF.
_PRINTED = {
    "nl": ("€ {n}", "€ {n}", "€{n}", "EUR {n}", "{n}"),
    "de": ("{n} €", "{n} €", "{n} EUR", "EUR {n}", "{n}"),
    "fr": ("{n} €", "{n} €", "{n} €", "{n} EUR", "{n}"),
    "es": ("{n} €", "{n} €", "{n}€", "{n} EUR", "{n}"),
    "it": ("€ {n}", "€ {n}", "{n} €", "EUR {n}", "{n}"),
    "CHF": ("CHF {n}", "CHF {n}", "Fr. {n}", "{n} CHF", "{n}"),
    "USD": ("$ {n}", "USD {n}", "{n} USD", "{n}"),
    "GBP": ("£ {n}", "GBP {n}", "£{n}", "{n}"),
}


@dataclass(frozen=True)
class Locale:
    country: str  # ISO 3166 code, also the Party.region of its companies
    language: str  # a key of languages.INVOICE
    currency: str  # "EUR" | "CHF"
    amount_styles: tuple[str, ...]  # content.format_amount styles, weighted by repetition
    legal_forms: tuple[str, ...]
    streets: tuple[str, ...]  # "{no}" marks the house number
    cities: tuple[str, ...]  # "{pc}" marks the postcode
    postcode: str  # "#" a digit, "@" a capital letter
    phones: tuple[str, ...]  # "#" a digit
    ids: tuple[str, ...]  # registration / VAT numbers, "#" a digit
    vat_rates: tuple[float, ...]  # percent


def _eu(*styles: str) -> tuple[str, ...]:
    return styles or ("eu", "eu", "eu", "eu_plain")


LOCALES = {
    "nl": (
        Locale("NL", "nl", "EUR", _eu(), ("B.V.", "B.V.", "BV", "N.V.", "V.O.F."),
               ("Keizersgracht {no}", "Stationsweg {no}", "Kerkstraat {no}", "Industrieweg {no}", "Dorpsstraat {no}a"),
               ("{pc} Amsterdam", "{pc} Rotterdam", "{pc} Utrecht", "{pc} Eindhoven", "{pc} Den Haag", "{pc} Zwolle"),
               "#### @@", ("Tel. 020 ### ## ##", "Tel: +31 (0)## ### ####", "T 0##-#######"),
               ("KvK ########", "BTW NL#########B01", "KvK-nr. ########"), (21.0, 21.0, 9.0)),
        Locale("BE", "nl", "EUR", _eu(), ("BV", "NV", "CommV"),
               ("Kerkstraat {no}", "Meir {no}", "Nieuwstraat {no}", "Stationsstraat {no} bus 2"),
               ("{pc} Antwerpen", "{pc} Gent", "{pc} Brugge", "{pc} Leuven"),
               "####", ("Tel. +32 # ### ## ##", "T 0## ## ## ##"), ("BTW BE 0###.###.###", "RPR Antwerpen"),
               (21.0, 6.0)),
    ),
    "de": (
        Locale("DE", "de", "EUR", _eu(), ("GmbH", "GmbH", "AG", "GmbH & Co. KG", "KG", "e.K."),
               ("Hauptstraße {no}", "Bahnhofstraße {no}", "Lindenweg {no}", "Gartenstraße {no}", "Industriestr. {no}"),
               ("{pc} Berlin", "{pc} München", "{pc} Köln", "{pc} Hamburg", "{pc} Stuttgart", "{pc} Leipzig"),
               "#####", ("Tel. +49 ## ######", "Telefon: 0## / ### ### #", "Tel.: 0### #####"),
               ("USt-IdNr.: DE#########", "HRB ##### Amtsgericht München", "Steuernr. ##/###/#####"),
               (19.0, 19.0, 7.0)),
        Locale("AT", "de", "EUR", _eu(), ("GmbH", "Ges.m.b.H.", "KG", "OG"),
               ("Mariahilfer Straße {no}/3", "Landstraße {no}", "Hauptplatz {no}", "Wiener Straße {no}"),
               ("{pc} Wien", "{pc} Graz", "{pc} Linz", "{pc} Salzburg"),
               "####", ("Tel. +43 # ### ## ##", "Tel.: 0### ######"), ("UID: ATU########", "FN ######a"),
               (20.0, 10.0)),
        Locale("CH", "de", "CHF", ("swiss", "swiss", "plain"), ("AG", "GmbH", "AG"),
               ("Bahnhofstrasse {no}", "Seestrasse {no}", "Dorfstrasse {no}", "Industriestrasse {no}"),
               ("{pc} Zürich", "{pc} Bern", "{pc} Basel", "{pc} Luzern"),
               "####", ("Tel. +41 ## ### ## ##", "T 0## ### ## ##"), ("UID: CHE-###.###.### MWST",),
               (8.1, 8.1, 2.6)),
    ),
    "fr": (
        Locale("FR", "fr", "EUR", ("space", "space", "space", "eu_plain", "eu"),
               ("SARL", "SAS", "S.A.", "EURL", "SASU"),
               ("{no} rue de la République", "{no}, avenue Victor Hugo", "{no} boulevard Voltaire",
                "{no} rue des Lilas", "{no}, place du Marché", "ZI des Sablons, {no} rue Pasteur"),
               ("{pc} Paris", "{pc} Lyon", "{pc} Marseille", "{pc} Toulouse", "{pc} Nantes", "{pc} Lille CEDEX"),
               "#####", ("Tél. 0# ## ## ## ##", "Tél. : +33 # ## ## ## ##", "T. 0# ## ## ## ##"),
               ("SIRET ### ### ### #####", "TVA intracom. FR## #########", "RCS Lyon B ### ### ###",
                "APE ####Z"), (20.0, 20.0, 10.0, 5.5)),
        Locale("BE", "fr", "EUR", _eu(), ("SRL", "SA", "SC"),
               ("Rue de la Loi {no}", "Avenue Louise {no}", "Chaussée de Waterloo {no}"),
               ("{pc} Bruxelles", "{pc} Liège", "{pc} Namur", "{pc} Charleroi"),
               "####", ("Tél. +32 # ### ## ##",), ("TVA BE 0###.###.###", "RPM Bruxelles"), (21.0, 6.0)),
        Locale("CH", "fr", "CHF", ("swiss", "swiss", "plain"), ("SA", "Sàrl"),
               ("Rue du Rhône {no}", "Avenue de la Gare {no}", "Route de Lausanne {no}"),
               ("{pc} Genève", "{pc} Lausanne", "{pc} Neuchâtel", "{pc} Fribourg"),
               "####", ("Tél. +41 ## ### ## ##",), ("IDE CHE-###.###.### TVA",), (8.1, 2.6)),
    ),
    "es": (
        Locale("ES", "es", "EUR", _eu("eu", "eu", "eu", "eu_plain"), ("S.L.", "S.L.", "S.A.", "S.L.U."),
               ("Calle Mayor, {no}", "C/ Gran Vía {no}, 3º B", "Avda. de la Constitución {no}", "Calle Alcalá, {no}",
                "Paseo de Gracia {no}, 2º 1ª", "Pol. Ind. El Prado, nave {no}"),
               ("{pc} Madrid", "{pc} Barcelona", "{pc} Valencia", "{pc} Sevilla", "{pc} Bilbao", "{pc} Zaragoza"),
               "#####", ("Tel. ### ### ###", "Tfno.: +34 ### ## ## ##", "Tel: ### ## ## ##"),
               ("CIF: B########", "NIF: B-########", "C.I.F. A########"), (21.0, 21.0, 10.0, 4.0)),
    ),
    "it": (
        Locale("IT", "it", "EUR", _eu(), ("S.r.l.", "S.r.l.", "S.p.A.", "S.n.c.", "S.a.s."),
               ("Via Roma {no}", "Via Garibaldi, {no}", "Corso Vittorio Emanuele II {no}", "Viale Europa {no}",
                "Piazza della Repubblica {no}", "Via dell'Industria, {no}"),
               ("{pc} Roma (RM)", "{pc} Milano (MI)", "{pc} Torino (TO)", "{pc} Napoli (NA)", "{pc} Bologna BO",
                "{pc} Firenze (FI)"),
               "#####", ("Tel. ## #### ####", "Tel. +39 ## #######", "Tel/Fax ### ######"),
               ("P.IVA ###########", "P. IVA IT###########", "C.F. e P.IVA ###########", "REA MI-#######"),
               (22.0, 22.0, 10.0, 4.0)),
        Locale("CH", "it", "CHF", ("swiss", "swiss", "plain"), ("SA", "Sagl"),
               ("Via Nassa {no}", "Via Cantonale {no}", "Corso San Gottardo {no}"),
               ("{pc} Lugano", "{pc} Bellinzona", "{pc} Locarno"),
               "####", ("Tel. +41 ## ### ## ##",), ("IVA CHE-###.###.###",), (8.1,)),
    ),
}


def locale(rng: random.Random, language: str) -> Locale:
    """A country speaking `language`, its main country most often."""
    options = LOCALES[language]
    return options[0] if len(options) == 1 or rng.random() < 0.7 else rng.choice(options[1:])


def _fill(rng: random.Random, pattern: str) -> str:
    """Replace each '#' by a digit and each '@' by a capital letter."""
    return "".join(str(rng.randint(0, 9)) if c == "#" else rng.choice("BCDEGHJKLMNPRSTVWXZ") if c == "@" else c
                   for c in pattern)


def company_name(rng: random.Random, loc: Locale, shop: bool = False) -> str:
    lang = loc.language
    surname, trade = rng.choice(_SURNAMES[lang]), rng.choice(_SHOPS[lang] if shop else _TRADES[lang])
    trade_first = lang in ("fr", "es", "it") or shop
    style = rng.random()
    if style < 0.2:
        name = f"{surname} & {rng.choice(_SURNAMES[lang])}"
    elif style < 0.35:
        name = f"{rng.choice(_BRANDS[lang])} {trade}"
    else:
        name = f"{trade} {surname}" if trade_first or style < 0.5 else f"{surname} {trade}"
    if shop and rng.random() < 0.5:
        return name.upper()
    return name if shop and rng.random() < 0.6 else f"{name} {rng.choice(loc.legal_forms)}"


def address(rng: random.Random, loc: Locale, country_line: bool = False) -> tuple[str, ...]:
    street = rng.choice(loc.streets).format(no=rng.randint(1, 180))
    city = rng.choice(loc.cities).format(pc=_fill(rng, loc.postcode))
    countries = {"NL": "Nederland", "BE": "Belgique" if loc.language == "fr" else "België", "DE": "Deutschland",
                 "AT": "Österreich", "CH": {"de": "Schweiz", "fr": "Suisse", "it": "Svizzera"}.get(loc.language, ""),
                 "FR": "France", "ES": "España", "IT": "Italia"}
    return (street, city, countries[loc.country]) if country_line else (street, city)


def party(rng: random.Random, loc: Locale, shop: bool = False) -> Party:
    return Party(company_name(rng, loc, shop), address(rng, loc, not shop and rng.random() < 0.2),
                 _fill(rng, rng.choice(loc.phones)), _fill(rng, rng.choice(loc.ids)), loc.country)


def _id_kind(text: str) -> str:
    return re.sub(r"\W", "", text)[:3]  # "C.I.F. A1" and "CIF: B2" are one kind of number


def legal_ids(rng: random.Random, loc: Locale, known: str) -> list[str]:
    """The company's `known` registration number and up to two more of other kinds, for a footer."""
    others = [p for p in loc.ids if _id_kind(p) != _id_kind(known)]
    return [known, *(_fill(rng, p) for p in rng.sample(others, min(len(others), rng.randint(1, 2))))]


def bank(rng: random.Random, loc: Locale) -> tuple[str, str]:
    """IBAN and BIC lines (well-formed looking, not checksummed)."""
    return (f"IBAN {loc.country}{_fill(rng, '## #### #### #### #### ##')}",
            f"BIC {_fill(rng, '@@@@')}{loc.country}{_fill(rng, '@@')}")


def date_format(rng: random.Random, loc: Locale) -> str:
    """One document prints all its dates one way: a `format_date` pattern."""
    return rng.choice(_DATES[loc.language] + ("{d:02d}.{m:02d}.{y}",) * 4 * (loc.country == "CH"))


def format_date(day: dt.date, loc: Locale, pattern: str) -> str:
    months = _MONTHS[loc.language].split()
    return pattern.format(d=day.day, m=day.month, y=day.year, yy=day.year % 100, mon=months[day.month - 1])


def rate_text(rate: float, loc: Locale) -> str:
    """VAT rate as printed: "21", "5,5" (comma decimals outside Switzerland's dot)."""
    text = f"{rate:g}"
    return text if loc.country == "CH" else text.replace(".", ",")


def with_currency(rng: random.Random, number: str, cur: str, loc: Locale) -> tuple[str, int]:
    """Printed amount and the index where the bare number starts, currency placed as the language does."""
    pattern = rng.choice(_PRINTED[loc.language if cur == "EUR" else cur])
    return pattern.replace("{n}", number), pattern.index("{n}")


def currency(rng: random.Random, loc: Locale) -> str:
    """The locale's currency; one invoice in twelve is billed in dollars or pounds."""
    return rng.choice(("USD", "GBP")) if rng.random() < 1 / 12 else loc.currency


def services(rng: random.Random, n: int, loc: Locale) -> list[Item]:
    return items(rng, n, big=True, names=_SERVICES[loc.language])


def groceries(rng: random.Random, n: int, loc: Locale) -> list[Item]:
    """Shop-till lines at European shop prices (cents to a few tens)."""
    return [Item(rng.choice((1, 1, 1, 1, 2, 3, 6)), rng.choice(_GROCERIES[loc.language]),
                 round(rng.choice((rng.uniform(0.3, 4), rng.uniform(1, 15), rng.uniform(5, 40))), 2))
            for _ in range(n)]


def priced(rng: random.Random, number: str, cur: str, loc: Locale | None) -> tuple[str, int]:
    """`with_currency` of this locale, or of the English documents' regions when `loc` is None."""
    return content.with_currency(rng, number, cur) if loc is None else with_currency(rng, number, cur, loc)


def invoice_number(rng: random.Random, loc: Locale, year: int) -> str:
    n = rng.randint(1, 9999)
    patterns = {"nl": ("{y}-{n:04d}", "F{y}{n:04d}", "{n:06d}"),
                "de": ("RE-{y}-{n:05d}", "{y}{n:05d}", "R{n:06d}"),
                "fr": ("F{y}-{n:04d}", "FA{y}{n:05d}", "{y}-{n:04d}"),
                "es": ("{y}/{n:04d}", "FV{y}-{n:04d}", "A-{n:05d}"),
                "it": ("{n}/{y}", "{n:04d}/{y}", "FT{y}/{n:04d}")}[loc.language]
    return rng.choice(patterns + ("{n}", "INV-{n:05d}")).format(n=n, y=year)
