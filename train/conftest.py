"""Makes `pytest train/` work from the repository root without installing the package."""

import sys
from pathlib import Path

TRAIN_DIR = Path(__file__).resolve().parent
if str(TRAIN_DIR) not in sys.path:
    sys.path.insert(0, str(TRAIN_DIR))

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_thread():
    """Run a test on one CPU thread: the tiny models are dominated by per-op overhead, and OpenMP
    hand-offs make them slower on a busy 2-core machine. Opt in with
    `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cv2_one_thread():
    """OpenCV on one thread (the COCO detector graph), for the same reason as `one_thread`."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(threads)
