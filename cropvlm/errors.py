"""Exception types raised by the core. Each says what was wrong and where."""


class CropVLMError(Exception):
    """Base class for every error the core raises on purpose."""


class BoxError(CropVLMError, ValueError):
    """A box string or coordinates that are not a valid percent box."""


class TemplateError(CropVLMError, ValueError):
    """A question-template file that does not validate (names file, field and problem)."""


class LabelError(CropVLMError, ValueError):
    """Labels that cannot be used; `problems` lists every one, each naming its file and line.

    Raised before anything is written: a label import is all or nothing.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class DocumentError(CropVLMError):
    """A document that cannot be turned into pages: corrupt, encrypted, empty, too big."""


class UnsupportedMediaError(DocumentError):
    """Bytes that are neither a PDF nor an image format we render."""


class ReaderError(CropVLMError):
    """A reader backend that cannot run (engine missing, bad configuration)."""


class SpecError(CropVLMError, ValueError):
    """A policy or reader spec string such as `ocr:rapidocr@768` that does not parse."""


class PolicyError(CropVLMError):
    """A crop policy that cannot be loaded or run (missing weights, bad config)."""


class TrainingError(CropVLMError):
    """Training cannot go on: no usable examples, a reader that fails, a bad config."""
