"""cropvlm core: boxes, templates, rendering, crop policies, readers, synthetic documents.

Plain Python: nothing here imports Prefect, SQL or S3 clients (flows/, tasks/ and storage/
depend on this package, never the other way round).
"""

__version__ = "0.1.0"
