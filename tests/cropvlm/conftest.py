import pytest


@pytest.fixture(scope="module")
def offline():
    """For the Hugging Face tests: no hub access, and one CPU thread (tiny matmuls are
    ~20x slower with thread hand-offs). torch is imported here only when a test asks."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield
    torch.set_num_threads(threads)
