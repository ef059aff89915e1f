"""What every provider's steps share: the step itself (one write request and the plan changes
it carries), the create that is looked up instead of sent again after a lost answer (design
invariant 6), reading an image file from the catalog directory, and the graph a compile builds
(`StepGraph`: ids, who creates what, adoptions, refusals, image order).

A platform's steps subclass these with its own id resolver (`R`, the compile's `Ids`) and
connection (`C`); what they send, how they look a create up and what a store's answer means
stay in the platform's `steps.py`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from reconciler.errors import ApiError, CatalogError, TransportError
from reconciler.live import Live, label_path, path_key
from reconciler.model import Json
from reconciler.plan import Action, Change, Kind, Plan
from reconciler.providers.base import Compiled, Learned, ManagedIndex, Resolver, WriteCounter
from reconciler.rules import image_type
from reconciler.state.ledger import Ledger

R = TypeVar("R")  # the compile's id resolver (`Ids`)
C = TypeVar("C")  # the platform's connection (`Client`)

# A create whose answer is lost is looked up and, if absent, sent again at most this often.
MAX_CREATE_ATTEMPTS = 4


@dataclass(eq=False)
class Step(ABC, Generic[R, C]):
    """One write request and the plan changes it carries out.

    `prepare` builds the payload (on the coordinating thread, once the steps it depends on are
    done); `run` sends it (on a worker) and returns the ids it learned.
    """

    id: int
    label: str
    changes: list[Change]
    deps: set[int] = field(default_factory=set)
    deps_may_fail: bool = False
    requests: int = 1
    payload: Json = None

    # A create (intents, lookups) sets this to (kind, key).
    intent: tuple[str, str] | None = None
    lookup_first: bool = False
    # The plan change its requests are counted on (None: the first it carries).
    payer: Change | None = None

    @abstractmethod
    def prepare(self, ids: R) -> None: ...

    @abstractmethod
    def run(self, client: C, counter: WriteCounter) -> Learned: ...

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        """Record what this step made beyond the ledger's change rows (caller's thread)."""
        return None

    def before_send(self, ledger: Ledger) -> None:
        """Record, before the request goes out, what a lost answer must not make forgotten
        (caller's thread, after `prepare`)."""
        return None

    def digest(self) -> str:
        blob = json.dumps(self.payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


class CreateStep(Step[R, C]):
    """A create: intent first; an unknown outcome is looked up, never blindly re-sent."""

    @abstractmethod
    def send(self, client: C) -> Learned: ...

    @abstractmethod
    def lookup(self, client: C) -> Learned | None:
        """What the store holds for this object, or None if it is not there."""

    def already_there(self, exc: ApiError) -> bool:
        """Whether a refusal says the object exists (then it is looked up, not failed)."""
        return False

    def run(self, client: C, counter: WriteCounter) -> Learned:
        if self.lookup_first:  # a crashed run's intent: the object may already exist
            found = self.lookup(client)
            if found is not None:
                return found
        for attempt in range(1, MAX_CREATE_ATTEMPTS + 1):
            try:
                counter.add()
                return self.send(client)
            except TransportError as lost:
                try:
                    found = self.lookup(client)
                except CatalogError:
                    raise lost from None  # could not look: the outcome stays unknown
                if found is not None:
                    return found
                if attempt == MAX_CREATE_ATTEMPTS:
                    raise
            except ApiError as exc:
                if not self.already_there(exc):
                    raise
                found = self.lookup(client)
                if found is not None:
                    return found
                raise
        raise AssertionError("unreachable")


def read_image(catalog_dir: Path | None, key: str) -> tuple[bytes, str]:
    """An image file of the catalog (`key`: its path in the catalog directory): its bytes and
    its type (`png`, `jpeg`, ...), read when its upload is prepared."""
    if catalog_dir is None:
        raise CatalogError(f"image {key}: no catalog directory to read it from")
    path = catalog_dir / key
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CatalogError(
            f"image {path} cannot be read ({exc.strerror}); restore it or plan again"
        ) from None
    kind = image_type(content[:12])
    if kind is None:
        raise CatalogError(f"image {path} is not a jpg, png, gif, tiff or webp file")
    return content, kind


# -- the step graph a compile builds --------------------------------------------------------------

S = TypeVar("S", bound=Step[Any, Any])


class StepGraph(ABC, Generic[S]):
    """A compile in progress: the steps in plan order (a step's id is its place), which step
    creates each name or category (`providers`, so payloads referencing one wait for it), and
    the changes that send nothing: adopted (recorded as applied), refused (failed with the
    reason) and grouped (their outcome is their children's). A platform's `writes.py` adds the
    steps its API calls for.
    """

    def __init__(
        self, plan: Plan, live: Live, managed: ManagedIndex, catalog_dir: Path | None
    ) -> None:
        self.plan = plan
        self.live = live
        self.managed = managed
        self.catalog_dir = catalog_dir
        self.steps: list[S] = []
        self.providers: dict[tuple[str, str], int] = {}  # (kind, key) -> creating step
        self.adopted: list[Change] = []
        self.refused: list[tuple[Change, str]] = []
        self.groups: list[Change] = []  # changes whose outcome is their children's

    def _add(self, step: S) -> S:
        self.steps.append(step)
        return step

    def _next(self) -> int:
        return len(self.steps)

    def _is_managed(self, kind: Kind, key: str) -> bool:
        return key in self.managed.get(str(kind), {})

    # Prune touches only what this catalog manages (design invariant 3), whatever the plan: a
    # product or variant to retire that it does not manage is refused, saying so.

    def _unmanaged_product(self, change: Change) -> bool:
        if self._is_managed(Kind.PRODUCT, change.key):
            return False
        self.refused.append((change, f"product {change.key} is not managed by this catalog"))
        return True

    def _unmanaged_row(self, change: Change, family_change: Change) -> bool:
        if self._is_managed(Kind.VARIANT, change.key) or self._is_managed(
            Kind.PRODUCT, family_change.key
        ):
            return False
        self.refused.append((change, f"variant {change.key} is not managed by this catalog"))
        return True

    @abstractmethod
    def _image_upload(self, change: Change, product: Change) -> S: ...

    @abstractmethod
    def _image_move(self, change: Change, product: Change) -> S: ...

    @abstractmethod
    def _image_delete(self, change: Change, product: Change) -> S: ...

    def _images(self, change: Change, create: S | None) -> None:
        """A product's image changes: deletes and moves first, then uploads one after another
        in catalog order (the store puts each after the ones before, so that order is the
        family's image order), after the step creating the product, if any."""
        images = [c for c in change.children if c.kind is Kind.IMAGE]
        before: set[int] = {create.id} if create is not None else set()
        for c in images:
            if c.action is Action.ADOPT:  # the store's image recorded as this file: no request
                self.adopted.append(c)
            elif c.action is Action.DELETE:
                self._add(self._image_delete(c, change))
            elif c.action is Action.UPDATE:
                before.add(self._add(self._image_move(c, change)).id)
        uploads = [c for c in images if c.action is Action.CREATE]
        uploads.sort(key=lambda c: {f.field: f.after for f in c.fields}.get("position") or 0)
        for c in uploads:
            step = self._add(self._image_upload(c, change))
            step.deps = set(before)
            before = {step.id}

    def compiled(self, resolver: Resolver, **more: Any) -> Compiled[Any]:
        """The steps built, as the engine takes them (`more`: notes and notices)."""
        return Compiled(
            steps=self.steps,
            adopted=self.adopted,
            refused=self.refused,
            groups=self.groups,
            resolver=resolver,
            **more,
        )


def label_key(label: str) -> str:
    """A category label as `providers` keys it: its levels compared as the store does."""
    return " / ".join(path_key(label_path(label)))
