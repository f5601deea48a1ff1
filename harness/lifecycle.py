"""What every server-like part of the harness shares: ``with part:`` starts it and closes it after."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Lifecycle(ABC):
    """A part that is started once and closed (idempotently); usable as a context manager."""

    @abstractmethod
    def start(self) -> Self:
        """Start serving; return the started part."""

    @abstractmethod
    def close(self) -> None:
        """Stop and release everything; idempotent."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
