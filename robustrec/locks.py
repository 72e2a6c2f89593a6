"""Advisory file locks: one process per run folder and per study folder, shared preparation done once.

A lock is an OS lock (``flock`` on Unix, ``LockFileEx`` on Windows, through ``filelock``) on a
small file beside what it protects; the holder writes its PID into it so a refusal can name it.
The OS releases the lock when the holder exits, however it exits (``kill -9`` included), so a
dead holder never blocks anyone: its file is simply locked again by the next process.

- ``hold(path, what, hint)``: take the lock now or raise ``LockedError`` naming the holder's PID
  (a second ``robustrec train`` of one run name, a second ``study run`` of one folder).
- ``waiting(path)``: wait for the lock (shared preparation: the first process builds, the others
  wait and then use what it built); where locks cannot be taken (a read-only or lock-less file
  system) it does not lock, and the caller's own checks (atomic renames) still hold.
- ``holder(path)``: the PID holding the lock (0 when unknown), or None when nobody holds it.

Locks are re-entrant within a process (the same path held twice is one lock), are not kept by
children made with ``fork`` (a forked worker must not outlive its parent's lock), and on release
the file is removed, so nothing is left behind.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from robustrec.errors import ConfigError, RobustRecError


class LockedError(RobustRecError):
    """Another process holds the lock of a run or study folder."""


_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP}
_HELD: dict[str, list] = {}  # absolute lock path -> [fd, count, folders we created]
_GUARD = threading.RLock()


def _forget_after_fork() -> None:
    """In a forked child: close the inherited descriptors without unlocking (the parent keeps
    its lock; the child no longer holds it once the parent exits)."""
    for fd, *_ in _HELD.values():
        if fd < 0:
            continue
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _key(path: str | Path) -> str:
    return os.path.realpath(path)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, outermost first."""
    missing = []
    probe = folder
    while not probe.exists() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding the lock of ``path``, or None when another process holds it.

    The file is created if needed. A holder removes the file before it unlocks, so a descriptor
    locked on a file no longer at ``path`` is retried (else two processes could each hold one)."""
    from filelock import lock_descriptor

    mask = os.umask(0)
    os.umask(mask)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~mask)
        try:
            if not lock_descriptor(fd, blocking=False):
                os.close(fd)
                return None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd
        os.close(fd)  # locked a removed file: its holder just released it; lock the new one


def _write_pid(fd: int) -> None:
    data = f"{os.getpid()}\n".encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


def _read_pid(path: Path) -> int:
    """The PID written in the lock file (0 when unreadable or not written yet)."""
    for _ in range(20):  # the holder writes its PID just after locking
        try:
            text = Path(path).read_text().strip()
        except OSError:
            return 0
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return 0


def _release(path: Path, fd: int, created: list[Path]) -> None:
    from filelock import unlock_descriptor

    if fd < 0:
        return

    try:
        os.unlink(path)  # before unlocking: a waiter that then locks the old file sees it is gone
    except OSError:
        pass
    try:
        unlock_descriptor(fd)
    except OSError:
        pass
    os.close(fd)
    for folder in reversed(created):  # folders made only to hold the lock, still empty
        try:
            folder.rmdir()
        except OSError:
            break


def describe_holder(pid: int) -> str:
    return f"pid {pid}" if pid else "pid unknown"


@contextmanager
def hold(path: str | Path, what: str, hint: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock of ``path`` for the block, or raise ``LockedError`` at once (after ``wait``
    seconds when > 0): ``<what> is being written by another robustrec process (pid N); <hint>``.

    Missing parent folders are created, and removed again on release if still empty."""
    path = Path(path)
    key = _key(path)
    with _GUARD:
        entry = _HELD.get(key)
        if entry is not None:
            entry[1] += 1
        else:
            created: list[Path] = []
            fd = None
            try:
                created = _make_parents(path.parent)
                deadline = time.monotonic() + max(wait, 0.2)  # a `study status` probe holds it an instant
                while True:
                    try:
                        fd = _try_lock(path)
                    except FileNotFoundError:  # the holder released and removed the folder it made
                        created += _make_parents(path.parent)
                        continue
                    if fd is not None or time.monotonic() >= deadline:
                        break
                    time.sleep(0.05)
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise ConfigError(f"cannot lock {what} ({path}): {exc.strerror or exc}") from None
                fd = -1  # a file system without locks: run unlocked, as before locks existed
            if fd is None:
                pid = _read_pid(path)
                for folder in reversed(created):
                    try:
                        folder.rmdir()
                    except OSError:
                        break
                raise LockedError(f"{what} is being written by another robustrec process ({describe_holder(pid)}); "
                                  f"{hint}")
            if fd >= 0:
                _write_pid(fd)
            entry = _HELD[key] = [fd, 1, created]
    try:
        yield
    finally:
        _drop(path, key)


def _drop(path: Path, key: str) -> None:
    with _GUARD:
        entry = _HELD.get(key)
        if entry is None:  # forgotten after a fork
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[key]
            _release(path, entry[0], entry[2])


@contextmanager
def waiting(path: str | Path, poll: float = 0.05) -> Iterator[bool]:
    """Hold the lock of ``path`` for the block, waiting for it as long as another process holds
    it; yields False (and does not lock) when the lock cannot be taken at all (read-only folder,
    a file system without locks): callers must stay correct without it."""
    path = Path(path)
    key = _key(path)
    with _GUARD:
        entry = _HELD.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        fd = None
        while fd is None:
            try:
                fd = _try_lock(path)
            except OSError:
                yield False
                return
            if fd is None:
                time.sleep(poll)
        try:
            _write_pid(fd)
        except OSError:
            pass
        with _GUARD:
            _HELD[key] = [fd, 1, []]
    try:
        yield True
    finally:
        _drop(path, key)


def holder(path: str | Path) -> int | None:
    """The PID of the process holding the lock of ``path`` (0 when it cannot be read), or None
    when no process holds it (no file, or a file left by a holder that died)."""
    path = Path(path)
    if _key(path) in _HELD:
        return os.getpid()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        from filelock import lock_descriptor, unlock_descriptor

        try:
            free = lock_descriptor(fd, blocking=False)
        except OSError:  # cannot probe (e.g. NFS wants write access): is the recorded process alive?
            pid = _read_pid(path)
            return pid if pid and pid_alive(pid) else None
        if free:
            unlock_descriptor(fd)
            return None
    finally:
        os.close(fd)
    return _read_pid(path)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (on Windows: assumed, signal 0 would kill it)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def run_lock_path(run_dir: str | Path) -> Path:
    """The lock of a run folder (held while it trains): ``.<name>.lock`` beside it."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.lock"


def run_lock(run_dir: str | Path, wait: float = 0.0):
    """``hold`` the lock of the run folder ``run_dir`` (a second process training it is refused,
    after ``wait`` seconds: a study cell retried elsewhere waits for its first attempt to end)."""
    return hold(run_lock_path(run_dir), str(run_dir), "wait for it or pick another --name", wait=wait)


STUDY_LOCK = ".study.lock"


def study_lock_path(folder: str | Path) -> Path:
    """The lock of a study folder (held while ``study run`` drives it)."""
    return Path(folder) / STUDY_LOCK


def study_lock(folder: str | Path):
    """``hold`` the lock of a study folder (a second ``study run`` of it is refused)."""
    return hold(study_lock_path(folder), f"study folder {folder}",
                "wait for it, or follow it with `robustrec study status`")
