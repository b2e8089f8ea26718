"""Secure use of a joint tree model: each party holds only its own splits.

For the rows to score, the network evaluates its own splits (bin the row, look up the
bins that go left) and sends one bit per network split; the wallet walks every tree with
its own splits and those bits, adds the leaf values and keeps the score. One message.

- Batch (a campaign list): both align their files by PSI, as in training, then the
  network sends the bit matrix for all shared rows (`blindgate predict`).
- Single row (risk at payment time): a session over one open channel; the wallet sends a
  customer id, the network answers with that row's bits, or "not held".

What each party learns: the wallet, the direction of each row at every network split
(more than the path would show: also at nodes off the row's path) and the scores; the
network, which shared customers are scored (batch: the PSI join; single row: the id
asked), never a score, a leaf value or the wallet's splits. Unseen levels and missing
values follow each split's default direction (:mod:`.binning`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.ml.data import Table, subset_rows
from blindgate.pets.ml.errors import DataError
from blindgate.pets.ml.gbdt.model import NetworkModel, WalletModel
from blindgate.pets.ml.gbdt.protocol import PROTOCOL, VERSION, pack_bits, unpack_bits
from blindgate.pets.ml.gbdt.trees import NETWORK_OWNER, WALLET_OWNER, sigmoid
from blindgate.pets.ml.joint import align_over

PREDICT_PROTOCOL = PROTOCOL + "-predict"
STOP, HELD, NOT_HELD = b"", b"\x01", b"\x00"


def check_pair(channel: Channel, model: WalletModel | NetworkModel) -> None:
    """Both files must come from the same training run (same model id and split count)."""
    wallet = isinstance(model, WalletModel)
    splits = len(model.ensemble.network_nodes()) if wallet else len(model.splits.splits)  # type: ignore[union-attr]
    theirs = channel.hello(
        PREDICT_PROTOCOL,
        VERSION,
        role="wallet" if wallet else "network",
        model_id=model.model_id,
        splits=splits,
    )
    if theirs.get("role") == ("wallet" if wallet else "network"):
        raise DataError("both parties hold the same party's model file")
    if theirs.get("model_id") != model.model_id or theirs.get("splits") != splits:
        raise DataError("the two model files do not belong to the same trained model")


def predict_batch(
    channel: Channel,
    model: WalletModel | NetworkModel,
    table: Table,
    alignment: str = "psi",
    allow_missing_columns: bool = False,
) -> tuple[list[str], np.ndarray | None]:
    """Score every row both parties hold; the wallet gets (ids, probabilities), the network (ids, None)."""
    rows, scores = predict_rows(channel, model, table, alignment, allow_missing_columns)
    return [table.ids[row] for row in rows], scores


def predict_rows(
    channel: Channel,
    model: WalletModel | NetworkModel,
    table: Table,
    alignment: str = "psi",
    allow_missing_columns: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[int], np.ndarray | None]:
    """`predict_batch` by position: (the rows of ``table`` both hold, in the agreed order; scores).

    ``progress(stage, done, total)``: ``align`` (0/1, 1/1), then ``score rows`` (the wallet:
    rows scored of the shared rows) or ``send split bits`` (the network), 0/N and N/N.
    """
    tick = progress or (lambda stage, done, total: None)
    wallet = isinstance(model, WalletModel)
    check_pair(channel, model)
    tick("align", 0, 1)
    rows = align_over(channel, wallet, table.ids, alignment)
    tick("align", 1, 1)
    if not rows:
        raise DataError("no ids are held by both parties")
    aligned = subset_rows(table, rows)
    codes = model.binning.transform(aligned, allow_missing_columns)
    stage = "score rows" if wallet else "send split bits"
    tick(stage, 0, len(rows))
    if isinstance(model, NetworkModel):
        channel.send_array(pack_bits(model.splits.bits(codes)))
        tick(stage, len(rows), len(rows))
        return rows, None
    bits = unpack_bits(channel.recv_array(np.uint8), len(rows))
    scores = sigmoid(model.ensemble.margins(codes, bits))
    tick(stage, len(rows), len(rows))
    return rows, scores


@dataclass
class CompiledTrees:
    """The wallet's trees as flat arrays, built once: a single row's score is then a couple
    of dozen numpy calls whatever the number of trees (all trees walk one level per step),
    where a Python walk costs a loop turn per node visited."""

    base: float
    depth: int
    nodes: int  # per tree, heap order
    wallet_node: np.ndarray  # bool (trees * nodes,)
    inner: np.ndarray  # bool (trees * nodes,)
    feature: np.ndarray  # int64 (trees * nodes,), the wallet's column (0 where not a wallet split)
    table_at: np.ndarray  # int64 (trees * nodes,), where the node's go-left table starts in ``left``
    left: np.ndarray  # bool (trees * nodes * (bins + 1),)
    bit_at: np.ndarray  # int64 (trees * nodes,), the node's network bit (``splits``: none)
    value: np.ndarray  # float64 (trees * nodes,)
    splits: int

    @classmethod
    def of(cls, model: WalletModel) -> CompiledTrees:
        trees = model.ensemble.trees
        splits = len(model.ensemble.network_nodes())
        depth, width = model.config.depth, model.config.bins + 1
        nodes = 2 ** (depth + 1) - 1
        column = {key: k for k, key in enumerate(model.ensemble.network_nodes())}
        owner = np.concatenate([tree.owner for tree in trees]) if trees else np.zeros(0, np.int8)
        bit_at = [column.get((t, n), splits) for t in range(len(trees)) for n in range(nodes)]
        return cls(
            base=model.ensemble.base,
            depth=depth,
            nodes=nodes,
            wallet_node=owner == WALLET_OWNER,
            inner=(owner == WALLET_OWNER) | (owner == NETWORK_OWNER),
            feature=np.concatenate([np.maximum(t.feature, 0) for t in trees]).astype(np.int64)
            if trees
            else np.zeros(0, np.int64),
            table_at=np.arange(len(owner), dtype=np.int64) * width,
            left=np.concatenate([tree.left.reshape(-1) for tree in trees]) if trees else np.zeros(0, bool),
            bit_at=np.array(bit_at, dtype=np.int64),
            value=np.concatenate([tree.value for tree in trees]) if trees else np.zeros(0),
            splits=splits,
        )

    def margin(self, codes: np.ndarray, bits: np.ndarray) -> float:
        """One row's raw score: its wallet codes and one go-left bit per network split."""
        if not len(self.value):
            return self.base
        padded = np.append(bits[: self.splits].astype(bool), False)  # bit_at == splits: no bit
        wallet_left = self.left[self.table_at + codes[self.feature]] if codes.size else False
        go_left = np.where(self.wallet_node, wallet_left, padded[self.bit_at])
        at = np.arange(0, len(self.value), self.nodes)  # each tree's root
        node = np.zeros(len(at), dtype=np.int64)
        for _level in range(self.depth):
            here = at + node
            node = np.where(self.inner[here], 2 * node + 2 - go_left[here], node)
        return float(self.base + self.value[at + node].sum())


class RowScorer:
    """The wallet's end of a single-row session: ``score(id)`` -> probability, or None if the
    network does not hold that customer. Raises DataError for an id the wallet lacks."""

    def __init__(self, channel: Channel, model: WalletModel, table: Table) -> None:
        check_pair(channel, model)
        self.channel = channel
        self.compiled = CompiledTrees.of(model)
        self.splits = self.compiled.splits
        self.row_of = {identifier: i for i, identifier in enumerate(table.ids)}
        # one array, not a list per row: a long session's heap stays small for the collector
        self.codes = model.binning.transform(table).astype(np.int64)

    def score(self, identifier: str) -> float | None:
        row = self.row_of.get(identifier)
        if row is None:
            raise DataError("the wallet's table does not hold this customer")
        self.channel.send(identifier.encode())
        reply = self.channel.recv()
        if reply == NOT_HELD:
            return None
        if len(reply) != 1 + (self.splits + 7) // 8 or reply[:1] != HELD:
            raise MalformedFrame("expected one bit per network split")
        bits = np.unpackbits(np.frombuffer(reply, dtype=np.uint8, offset=1))
        return 1.0 / (1.0 + math.exp(-self.compiled.margin(self.codes[row], bits)))

    def close(self) -> None:
        self.channel.send(STOP)


def serve_rows(channel: Channel, model: NetworkModel, table: Table) -> int:
    """The network's end of a single-row session, until the wallet stops (or the channel's
    timeout passes with no request); returns the number of rows answered."""
    check_pair(channel, model)
    row_of = {identifier: i for i, identifier in enumerate(table.ids)}
    codes = model.binning.transform(table).astype(np.int64)
    splits = model.splits.compiled()
    answered = 0
    while (request := channel.recv()) != STOP:
        row = row_of.get(request.decode(errors="replace"))
        if row is None:
            channel.send(NOT_HELD)
            continue
        channel.send(HELD + np.packbits(splits.row_bits(codes[row])).tobytes())
        answered += 1
    return answered
