"""Writing files so that a reader never sees a partial one."""

import contextlib
import os
import tempfile

__all__ = ["atomic_path", "save_figure", "write_atomic"]


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path that replaces ``path`` when the block succeeds.

    The temporary file lies in the same folder, so the final `os.replace` is
    atomic, and ends with ``path``'s whole name, so the format Keras picks
    from the extension (``.keras``, ``.weights.h5``) is the same. It is removed if the block raises; ``path`` is then
    left as it was.

    Args:
        path: The file to write.

    Yields:
        The temporary path to write to.

    Example:

    >>> with atomic_path("fixed.keras") as tmp:  # doctest: +SKIP
    ...     model.save(tmp)
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-keras-vs-", suffix="-" + os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes private files; results get a normal file's permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path, payload):
    """Writes ``payload`` (str or bytes) to ``path`` atomically.

    Args:
        path: The file to write.
        payload: Its whole content.

    Example:

    >>> write_atomic("results.csv", "trial,rate\\n")  # doctest: +SKIP
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload.encode() if isinstance(payload, str) else payload)


def save_figure(fig, path):
    """Saves a matplotlib figure atomically (format from the extension) and closes it.

    Args:
        fig: A `matplotlib.figure.Figure`.
        path: The image file, e.g. ``"shift.png"`` or ``"shift.pdf"``.

    Raises:
        ValueError: matplotlib does not know the extension's format.

    Example:

    >>> save_figure(fig, "results.png")  # doctest: +SKIP
    """
    from matplotlib import pyplot as plt

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt)
    finally:
        plt.close(fig)
