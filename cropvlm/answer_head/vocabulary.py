"""Words documents print around their values, in the languages we read (en, nl, de, fr,
es, it, ms). The answer head sees *whether* a line holds such a word, never which one, so
it learns the role of a label ("a total label on the row") rather than a vendor's wording.
A template's own aliases are a separate feature: they name the field asked.
"""

from __future__ import annotations

import re


def _words(*words: str) -> re.Pattern[str]:
    body = "|".join(sorted((re.escape(w).replace(r"\ ", r"\s*") for w in words), key=len, reverse=True))
    return re.compile(r"(?<![^\W\d_])(?:" + body + r")(?![^\W\d_])", re.IGNORECASE)


TOTAL = _words("total", "totaal", "gesamt", "gesamtbetrag", "summe", "endbetrag", "montant", "importe", "totale",
               "grand total", "amount due", "balance due", "to pay", "te betalen", "à payer", "a payer",
               "zu zahlen", "net total", "nett total", "nett", "net amount", "amount", "bedrag", "betrag",
               "jumlah", "importo", "rounded total", "total due")
NOT_TOTAL = _words("subtotal", "sub total", "sub-total", "subtotaal", "zwischensumme", "sous-total", "sous total",
                   "base imponible", "imponibile", "tax", "vat", "btw", "mwst", "ust", "tva", "iva", "gst", "sst",
                   "discount", "korting", "rabatt", "remise", "descuento", "sconto", "rounding", "round", "qty",
                   "quantity", "items", "item", "excl", "exkl", "saving", "savings", "service charge", "deposit")
PAYMENT = _words("cash", "change", "card", "visa", "master", "mastercard", "tender", "tendered", "paid", "betaald",
                 "bezahlt", "payé", "pagado", "pagato", "bar", "contant", "espèces", "efectivo", "contanti",
                 "balance", "refund", "kembali", "tunai")
DATE = _words("date", "datum", "fecha", "data", "tarikh", "dated", "issued", "factuurdatum", "rechnungsdatum",
              "date de facture", "fecha de factura", "data fattura", "invoice date", "date of issue", "tgl")
DUE = _words("due", "due date", "vervaldatum", "fällig", "fälligkeit", "échéance", "vencimiento", "scadenza",
             "payment terms", "betaaltermijn", "zahlungsziel", "order date", "delivery", "leverdatum",
             "lieferdatum", "livraison", "entrega", "consegna", "expiry", "exp")
NUMBER = _words("no", "nr", "number", "nummer", "numéro", "numero", "número", "n°", "nº", "no.", "num", "#",
                "invoice no", "invoice number", "factuurnummer", "factuurnr", "rechnungsnummer", "rechnungs-nr",
                "facture n°", "n° de facture", "factura n", "fattura n", "ref", "reference", "referentie",
                "bill no", "receipt no", "doc no", "inv")
OTHER_ID = _words("order", "bestelling", "bestellung", "commande", "pedido", "ordine", "customer", "klant",
                  "kunde", "client", "cliente", "account", "iban", "bic", "swift", "vat no", "btw nr", "kvk",
                  "ust-id", "siret", "siren", "cif", "nif", "p.iva", "partita iva", "tel", "phone", "fax",
                  "po", "table", "cashier", "member", "gst id", "gst reg", "reg no", "co no", "roc")
TITLE = _words("invoice", "tax invoice", "factuur", "rechnung", "facture", "factura", "fattura", "receipt",
               "official receipt", "cash sale", "cash bill", "simplified tax invoice", "quittung", "kassenbon",
               "bon", "ticket", "reçu", "recibo", "ricevuta", "scontrino", "credit note", "creditnota",
               "gutschrift", "avoir", "abono", "nota di credito", "copy", "duplicate", "original", "welcome",
               "thank you", "terima kasih")
LEGAL = _words("sdn bhd", "sdn. bhd.", "bhd", "berhad", "s/b", "ltd", "limited", "llc", "inc", "plc", "corp",
               "gmbh", "ag", "kg", "ug", "b.v.", "bv", "n.v.", "nv", "vof", "s.a.", "sa", "sarl", "sas", "eurl",
               "s.l.", "sl", "s.r.l.", "srl", "s.p.a.", "spa", "snc", "enterprise", "enterprises", "trading",
               "co.", "company")
CONTACT = _words("tel", "tel.", "phone", "telefon", "telefoon", "téléphone", "tél", "teléfono", "telefono", "fax",
                 "email", "e-mail", "mail", "www", "http", "https", "web", "website", "h/p", "hp", "mobile", "gsm")
REGISTRATION = _words("gst", "gst id", "gst reg", "reg", "registration", "roc", "co. reg", "company no", "vat",
                      "vat no", "btw", "btw-nr", "kvk", "ust-id", "ust-idnr", "steuernummer", "handelsregister",
                      "hrb", "siret", "siren", "rcs", "tva intracommunautaire", "cif", "nif", "p.iva",
                      "partita iva", "iban", "bic", "swift", "bank", "abn", "ein", "uen", "brn")
BILL_TO = _words("bill to", "billed to", "ship to", "sold to", "deliver to", "customer", "client", "cliente",
                 "klant", "kunde", "rechnungsadresse", "lieferadresse", "factuuradres", "afleveradres",
                 "destinataire", "facturé à", "livré à", "facturar a", "enviar a", "fatturare a", "spedire a",
                 "attn", "attention", "to:", "invoice to", "bill-to", "ship-to")
STREET = _words("jalan", "jln", "lorong", "taman", "street", "st", "road", "rd", "avenue", "ave", "lane", "drive",
                "straat", "str", "strasse", "straße", "weg", "laan", "plein", "gracht", "rue", "boulevard", "bd",
                "avenue", "calle", "avenida", "plaza", "via", "viale", "piazza", "corso", "lot", "no", "unit",
                "floor", "blok", "block", "suite", "building", "bldg", "kawasan", "bandar", "postbus", "postfach",
                "cedex", "bp")
POSTCODE = re.compile(r"(?<!\d)(\d{4}\s?[A-Z]{2}|\d{5}|\d{4}|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})(?![\dA-Z])")
PHONE = re.compile(r"\+?\d[\d\s\-()]{7,}\d")
TIME = re.compile(r"\b\d{1,2}:\d{2}(:\d{2})?\b")
CURRENCY = re.compile(r"RM|MYR|EUR|USD|GBP|CHF|SGD|[$€£¥]", re.IGNORECASE)

# Every vocabulary the features test a line against, in a fixed order (feature columns).
VOCABULARIES: dict[str, re.Pattern[str]] = {
    "total": TOTAL, "not_total": NOT_TOTAL, "payment": PAYMENT, "date": DATE, "due": DUE, "number": NUMBER,
    "other_id": OTHER_ID, "title": TITLE, "legal": LEGAL, "contact": CONTACT, "registration": REGISTRATION,
    "bill_to": BILL_TO, "street": STREET,
}


def hits(text: str) -> dict[str, bool]:
    """Which vocabularies occur in `text`."""
    return {name: bool(pattern.search(text)) for name, pattern in VOCABULARIES.items()}
