import io
import time

import pymupdf
import pytest
from PIL import Image

from cropvlm.errors import DocumentError, UnsupportedMediaError
from cropvlm.render import RenderConfig, render_document, sniff_media_type


def make_pdf(pages=1, width=595, height=842, text="Invoice No: INV-1") -> bytes:
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page(width=width, height=height)
        page.insert_text((72, 72), text, fontsize=12)
    return doc.tobytes()


def make_image(fmt="PNG", size=(300, 200), mode="RGB", frames=1) -> bytes:
    buffer = io.BytesIO()
    images = [Image.new(mode, size, "white") for _ in range(frames)]
    images[0].save(buffer, format=fmt, save_all=frames > 1, append_images=images[1:])
    return buffer.getvalue()


def test_pdf_renders_at_the_configured_dpi():
    rendered = render_document(make_pdf(pages=2), RenderConfig(dpi=72))
    assert rendered.media_type == "application/pdf"
    assert [p.size for p in rendered.pages] == [(595, 842), (595, 842)]
    assert rendered.pages[0].mode == "RGB"
    assert render_document(make_pdf(), RenderConfig(dpi=144)).pages[0].size == (1190, 1684)


@pytest.mark.parametrize("fmt, mode", [("PNG", "RGBA"), ("JPEG", "L"), ("TIFF", "1"), ("PNG", "P")])
def test_images_load_as_rgb_pages(fmt, mode):
    rendered = render_document(make_image(fmt, mode=mode))
    assert rendered.pages[0].mode == "RGB" and rendered.pages[0].size == (300, 200)


def test_multi_page_tiff_gives_one_page_per_frame():
    assert len(render_document(make_image("TIFF", frames=3)).pages) == 3


def test_the_type_comes_from_the_bytes_not_the_name():
    assert sniff_media_type(make_image("PNG")) == "image/png"
    assert sniff_media_type(b"junk" + make_pdf()) == "application/pdf"


# A page tree whose only kid is itself: MuPDF raises FzErrorFormat on it.
CYCLIC_PDF = (b"%PDF-1.4\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n"
              b"2 0 obj <</Type/Pages/Kids[2 0 R]/Count 1>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty file"),
        (b"hello, this is a text file", "unsupported file type"),
        (b"%PDF-1.7\n garbage that is not a pdf", "corrupt PDF"),
        (make_pdf()[:60], "corrupt PDF"),  # truncated
        (CYCLIC_PDF, "corrupt PDF: .*cycle in page tree"),  # MuPDF's own error type, not a RuntimeError
        (make_image("PNG")[:60], "corrupt or truncated PNG"),
        (make_image("JPEG")[:100], "corrupt or truncated JPEG"),
    ],
)
def test_bad_documents_fail_with_a_clear_message(data, message):
    with pytest.raises(DocumentError, match=message):
        render_document(data)


def test_unsupported_type_is_its_own_error():
    with pytest.raises(UnsupportedMediaError):
        render_document(b"PK\x03\x04 a zip file")


def test_encrypted_pdf_fails():
    doc = pymupdf.open()
    doc.new_page()
    data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")
    with pytest.raises(DocumentError, match="encrypted"):
        render_document(data)


def test_too_many_pages_fail_instead_of_tying_up_a_worker():
    with pytest.raises(DocumentError, match="3 pages, over the limit of 2"):
        render_document(make_pdf(pages=3), RenderConfig(max_pages=2))
    with pytest.raises(DocumentError, match="over the limit"):
        render_document(make_image("TIFF", frames=3), RenderConfig(max_pages=2))


def test_decompression_bomb_is_refused_before_decoding():
    # 20000 x 20000 white PNG compresses to a few hundred KB but would need 1.2 GB decoded.
    bomb = make_image("PNG", size=(20000, 20000), mode="1")
    assert len(bomb) < 2_000_000
    with pytest.raises(DocumentError, match="MP is over the limit|decompression bomb"):
        render_document(bomb)


def test_huge_pdf_pages_render_within_the_pixel_limit():
    data = make_pdf(width=72 * 100, height=72 * 100)  # 100 x 100 inch page
    page = render_document(data, RenderConfig(dpi=150, max_pixels=4_000_000)).pages[0]
    assert page.width * page.height <= 4_000_000


def test_a_document_over_its_pixel_budget_fails_before_any_page_renders():
    # 10 pages of 200 x 200 inches: each shrinks to max_pixels, 400 MP in all.
    data = make_pdf(pages=10, width=14400, height=14400)
    started = time.perf_counter()
    with pytest.raises(DocumentError, match="10 pages renders to over 38. MP, over the limit of 150 MP"):
        render_document(data)
    assert time.perf_counter() - started < 2  # refused from page sizes, nothing rendered
    assert len(render_document(data, RenderConfig(max_pixels=100_000, max_document_pixels=1_000_000)).pages) == 10
    with pytest.raises(DocumentError, match="3 pages renders to over"):  # image frames add up too
        render_document(make_image("TIFF", size=(1000, 1000), frames=3),
                        RenderConfig(max_pixels=1_000_000, max_document_pixels=2_500_000))


def test_a_document_budget_below_one_page_is_refused():
    with pytest.raises(ValueError, match="max_document_pixels must be >= max_pixels"):
        RenderConfig(max_pixels=1_000_000, max_document_pixels=999_999)
