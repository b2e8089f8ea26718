"""SecureBoost between the wallet (label and some columns) and the network (other columns).

The protocol (Cheng et al., "SecureBoost", 2019; the same family as SecretFlow's SGB and
FATE's Hetero SecureBoost), semi-honest, two parties over the pinned-TLS channel:

1. The wallet (active party) makes an Okamoto-Uchiyama key pair (HEU, 2048 bits) and
   sends the public key. Per tree it computes every training row's gradient and hessian,
   packs both into one ciphertext per row (:mod:`.he`) and sends them.
2. Level by level, the wallet tells the network which sampled rows sit in the nodes it
   should sum (the smaller child of each pair; the other is its parent minus it). The
   network sums the ciphertexts per (node, column, bin) homomorphically and returns the
   sums of the non-empty bins. A column whose most frequent bin holds a fifth of the rows
   or more is summed without that bin, which is then the node's total less the column's
   other bins (:class:`.he.DominantBins`): one subtraction a node instead of an addition a
   row; the wallet decrypts the same integers.
3. The wallet decrypts, adds its own columns' histograms (in clear), and picks each
   node's best split over both parties' columns. For a split on a network column it
   sends (column index, the bins that go left, the missing direction); the network
   applies it and returns which of the node's rows go left.
4. Leaves: the wallet computes the values from its own gradients; the network never
   sees them.

What each party learns (stated again in the run's view files):

- The network learns the **instance space of every node** of every tree: which of the
  shared customers sit together in each node (it needs them to sum), hence which rows
  end in the same leaf. Leaves group customers with similar predicted outcome, so the
  network learns a coarse similarity of the wallet's labels per group - not the labels,
  gradients or leaf values (those stay encrypted or at the wallet), and not the wallet's
  split columns or thresholds. With row subsampling it also learns each tree's sample.
  The instance space of its *own* splits it would know anyway; what it learns beyond
  SecureBoost's minimum is nothing: the wallet's splits reach it only as the partition.
- The wallet learns, per node, the **sum of gradients and hessians in every non-empty
  bin** of every network column (so which bins are empty), the number of bins and which
  columns are categorical, and the direction every row takes at each network split. A
  bin holding one row reveals that row's bin (the wallet knows each row's gradient), so
  with deep trees on few rows the wallet learns network values' bins: min_child_weight
  and fewer bins limit it. It learns no threshold, level name or column name.
- Neither learns the other's non-shared customers (PSI), or any column's values.

Threat model: semi-honest. The network checks the shapes of the wallet's requests (nodes
and splits the tree can have, one node per sampled row), not their honesty: a wallet that
deviates could ask for the histogram of a crafted row set (a single row, say) and learn
the network's bins for it. Hiding that needs the split search on secret shares.

Errors: bad peer frames raise ``MalformedFrame``; a peer with other hyper-parameters or
another protocol version, ``MlPeerError`` / ``ProtocolMismatch``; a peer that drops,
``PeerClosed``; a stalled one, ``ChannelTimeout``. Nothing is written on any of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.ml.errors import MlPeerError
from blindgate.pets.ml.gbdt.he import DominantBins, PublicKeyHolder, SecretKeyHolder
from blindgate.pets.ml.gbdt.trees import GbdtConfig, Split, column_sample

PROTOCOL = "blindgate-gbdt-secureboost"
VERSION = 1
STREAM_ROWS = 4096  # rows per encrypted chunk: small enough that encrypting and summing overlap


def agree(channel: Channel, wallet: bool, config: GbdtConfig, protocol_version: int = VERSION) -> None:
    """Both parties must speak this protocol version with the same hyper-parameters."""
    theirs = channel.hello(PROTOCOL, protocol_version, config=config.to_json())
    peer_config = theirs.get("config")
    if not isinstance(peer_config, dict):
        raise MalformedFrame("expected the peer's hyper-parameters")
    for name, value in config.to_json().items():
        if peer_config.get(name) != value:
            raise MlPeerError(
                f"the peer trains with another {name} ({peer_config.get(name)!r}, ours {value!r}): "
                "both parties must pass the same tree hyper-parameters"
            )


def _recv_rows(channel: Channel, limit: int) -> np.ndarray:
    rows = channel.recv_array(np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= limit)):
        raise MalformedFrame("row indices out of range")
    return rows


@dataclass
class RemoteFeatures:
    """The wallet's view of the network's columns: a FeatureSource driven over the channel."""

    channel: Channel
    he: SecretKeyHolder
    categorical: np.ndarray
    counts: np.ndarray
    bins: int
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    root: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.zeros(0), np.zeros(0)))
    seconds: dict[str, float] = field(default_factory=lambda: {"waiting": 0.0})

    def begin_tree(self, tree: int, grad: np.ndarray, hess: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """Stream the encrypted rows chunk by chunk: the network sums the root's histogram
        from each chunk while we encrypt the next, and answers with it."""
        self.sample = sample
        chunks = (len(sample) + STREAM_ROWS - 1) // STREAM_ROWS
        self.channel.send_json({"op": "tree", "tree": tree, "chunks": chunks})
        self.channel.send_array(sample.astype(np.int64))
        for start in range(0, len(sample), STREAM_ROWS):
            rows = sample[start : start + STREAM_ROWS]
            self.channel.send(self.he.encrypt(grad[rows], hess[rows]))
        allowed = np.array(self.channel.recv_json(), dtype=bool)
        if allowed.shape != self.categorical.shape:
            raise MalformedFrame("expected the peer's column sample")
        self.root = self._receive_histogram()
        return allowed

    def histograms(self, members: dict[int, np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        if set(members) == {0}:
            return {0: self.root}  # summed while the rows streamed in
        nodes = sorted(members)
        which = np.full(len(self.sample), -1, dtype=np.int16)
        for node in nodes:
            which[np.searchsorted(self.sample, members[node])] = node
        self.channel.send_json({"op": "hist", "nodes": nodes})
        self.channel.send_array(which)
        # The network sends node by node: we decrypt one while it sums the next.
        return {node: self._receive_histogram() for node in nodes}

    def _receive_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        width, columns = self.bins + 1, len(self.counts)
        waiting = time.perf_counter()
        positions = self.channel.recv_array(np.int32)
        blob = self.channel.recv()
        self.seconds["waiting"] += time.perf_counter() - waiting
        if positions.ndim != 1 or (
            positions.size and not 0 <= positions.min() <= positions.max() < width * columns
        ):
            raise MalformedFrame("histogram positions out of range")
        grad, hess = np.zeros(columns * width), np.zeros(columns * width)
        if positions.size:
            grad[positions], hess[positions] = self.he.decrypt_sums(blob, len(positions))
        return grad.reshape(columns, width), hess.reshape(columns, width)

    def route(self, tree: int, splits: dict[int, tuple[Split, np.ndarray]]) -> dict[int, np.ndarray]:
        nodes = sorted(splits)
        header = [
            {"node": node, "feature": splits[node][0].feature, "left": splits[node][0].left.tolist()}
            for node in nodes
        ]
        self.channel.send_json({"op": "route", "tree": tree, "splits": header})
        for node in nodes:
            self.channel.send_array(splits[node][1].astype(np.int64))
        result = {}
        for node in nodes:
            bits = self.channel.recv_array(np.uint8)
            if bits.shape != splits[node][1].shape:
                raise MalformedFrame("expected one direction per row")
            result[node] = bits.astype(bool)
        return result

    def bits(self, rows: np.ndarray, first_tree: int, end_tree: int) -> np.ndarray:
        """The network's go-left bits for ``rows`` at its splits of trees [first, end)."""
        self.channel.send_json({"op": "bits", "from": first_tree, "to": end_tree})
        self.channel.send_array(rows.astype(np.int64))
        return unpack_bits(self.channel.recv_array(np.uint8), len(rows))

    def finish(self, trees: int, model_id: str) -> dict[str, Any]:
        self.channel.send_json({"op": "done", "trees": trees, "model_id": model_id})
        reply = self.channel.recv_json()
        if not isinstance(reply, dict) or "costs" not in reply:
            raise MalformedFrame("expected the peer's closing summary")
        return dict(reply["costs"])


def pack_bits(bits: np.ndarray) -> np.ndarray:
    packed: np.ndarray = (
        np.packbits(bits.astype(bool), axis=1) if bits.size else np.zeros((bits.shape[0], 0), np.uint8)
    )
    return packed


def unpack_bits(packed: np.ndarray, rows: int) -> np.ndarray:
    if packed.ndim != 2 or packed.shape[0] != rows:
        raise MalformedFrame("expected a bit matrix, one row per asked row")
    return np.unpackbits(packed, axis=1).astype(bool)


@dataclass
class NetworkSplits:
    """The network's part of a model: its splits, keyed by (tree, node), in key order."""

    splits: dict[tuple[int, int], tuple[int, np.ndarray]] = field(default_factory=dict)

    def keys(self, first_tree: int = 0, end_tree: int | None = None) -> list[tuple[int, int]]:
        return sorted(k for k in self.splits if k[0] >= first_tree and (end_tree is None or k[0] < end_tree))

    def bits(self, codes: np.ndarray, first_tree: int = 0, end_tree: int | None = None) -> np.ndarray:
        """Go-left bits, rows x splits, for rows given as this party's codes."""
        return self.compiled(first_tree, end_tree).bits(codes)

    def compiled(self, first_tree: int = 0, end_tree: int | None = None) -> CompiledSplits:
        keys = self.keys(first_tree, end_tree)
        bins = next(iter(self.splits.values()))[1].shape[0] if self.splits else 1
        return CompiledSplits(
            np.array([self.splits[k][0] for k in keys], dtype=np.int64),
            np.stack([self.splits[k][1] for k in keys]) if keys else np.zeros((0, bins), dtype=bool),
        )


@dataclass(frozen=True)
class CompiledSplits:
    """Splits as two arrays, built once: scoring a row is then one gather."""

    features: np.ndarray  # (splits,)
    tables: np.ndarray  # bool (splits, bins + 1)

    def bits(self, codes: np.ndarray) -> np.ndarray:
        if not len(self.features):
            return np.zeros((codes.shape[0], 0), dtype=bool)
        return np.asarray(self.tables[np.arange(len(self.features))[None, :], codes[:, self.features]])

    def row_bits(self, codes: np.ndarray) -> np.ndarray:
        """One row's go-left bits (``codes``: the row's codes, 1-D): one gather in the flat tables."""
        flat, starts = self._flat
        return np.asarray(flat[starts + codes[self.features]])

    @cached_property
    def _flat(self) -> tuple[np.ndarray, np.ndarray]:
        starts = np.arange(len(self.features), dtype=np.int64) * self.tables.shape[1]
        return self.tables.reshape(-1), starts


@dataclass
class NetworkServer:
    """The network's side of training: answers the wallet's requests until it is done."""

    channel: Channel
    codes: np.ndarray  # all aligned rows, this party's columns
    categorical: np.ndarray
    config: GbdtConfig
    he: PublicKeyHolder | None = None
    model: NetworkSplits = field(default_factory=NetworkSplits)
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    allowed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    seconds: dict[str, float] = field(default_factory=lambda: {"sum": 0.0, "waiting": 0.0})

    def serve(self) -> tuple[str, int]:
        """Run until the wallet says done; return the model id and the number of trees kept."""
        rng = np.random.default_rng(self.config.seed + 1)
        self.cpu_started = time.process_time()
        self.plan = DominantBins.of(self.codes, self.config.bins + 1)
        while True:
            waiting = time.perf_counter()
            request = self.channel.recv_json()
            self.seconds["waiting"] += time.perf_counter() - waiting
            if not isinstance(request, dict):
                raise MalformedFrame("expected a request")
            op = request.get("op")
            if op == "tree":
                self._tree(request, rng)
            elif op == "hist":
                self._histograms(request)
            elif op == "route":
                self._route(request)
            elif op == "bits":
                self._bits(request)
            elif op == "done":
                return self._done(request)
            else:
                raise MalformedFrame("unknown request")

    def _tree(self, request: dict[str, Any], rng: np.random.Generator) -> None:
        assert self.he is not None
        self.sample = _recv_rows(self.channel, len(self.codes))
        chunks = int(request["chunks"])
        if chunks != (len(self.sample) + STREAM_ROWS - 1) // STREAM_ROWS:
            raise MalformedFrame("a chunk count that does not match the rows")
        self.allowed = column_sample(rng, self.codes.shape[1], self.config.colsample)
        self.he.start_rows()
        root: list[Any] | None = None
        for start in range(0, len(self.sample), STREAM_ROWS):
            rows = self.sample[start : start + STREAM_ROWS]
            chunk = self.he.add_rows(self.channel.recv(), len(rows))
            started = time.perf_counter()
            part = self.he.partial_sums(chunk, self.codes[rows], np.ones(len(rows), dtype=np.int8), self.plan)
            root = self.he.add_parts(root, part)
            self.seconds["sum"] += time.perf_counter() - started
        assert root is not None
        self.he.merge_rows()
        self.channel.send_json(self.allowed.tolist())
        self._send_histogram(self.he.assemble(root, self.plan), self.codes[self.sample])

    def _send_histogram(self, encrypted: object, rows: np.ndarray) -> None:
        """Only non-empty bins of sampled columns travel (the wallet would read the others as zero)."""
        width = self.config.bins + 1
        counts = np.zeros((self.codes.shape[1], width), dtype=np.int64)
        for j in np.nonzero(self.allowed)[0]:
            counts[j] = np.bincount(rows[:, j].astype(np.int64), minlength=width)
        positions = np.nonzero(counts.reshape(-1))[0].astype(np.int32)
        self.channel.send_array(positions)
        self.channel.send(PublicKeyHolder.select(encrypted, positions.tolist()) if positions.size else b"")

    def _histograms(self, request: dict[str, Any]) -> None:
        assert self.he is not None
        nodes = [int(n) for n in request["nodes"]]
        if not 0 < len(nodes) <= 2**self.config.depth or not all(
            0 < n < 2 ** (self.config.depth + 1) for n in nodes
        ):
            raise MalformedFrame("histogram request for nodes the tree cannot have")
        which = self.channel.recv_array(np.int16)
        if which.shape != self.sample.shape:
            raise MalformedFrame("expected one node per sampled row")
        codes = self.codes[self.sample]
        for node in nodes:  # one at a time: the wallet decrypts each while we sum the next
            started = time.perf_counter()
            mask = (which == node).astype(np.int8)
            encrypted = self.he.assemble(self.he.node_parts(codes, mask, self.plan), self.plan)
            self.seconds["sum"] += time.perf_counter() - started
            self._send_histogram(encrypted, codes[mask.astype(bool)])

    def _route(self, request: dict[str, Any]) -> None:
        tree = int(request["tree"])
        specs = request["splits"]
        if not 0 <= tree < self.config.trees or not 0 < len(specs) <= 2 ** (self.config.depth - 1):
            raise MalformedFrame("a split request the tree cannot have")
        rows = [_recv_rows(self.channel, len(self.codes)) for _ in specs]
        for spec, members in zip(specs, rows, strict=True):
            feature, left = int(spec["feature"]), np.array(spec["left"], dtype=bool)
            if not 0 <= feature < self.codes.shape[1] or left.shape != (self.config.bins + 1,):
                raise MalformedFrame("a split on a column or bins we do not have")
            self.model.splits[(tree, int(spec["node"]))] = (feature, left)
            self.channel.send_array(left[self.codes[members, feature]].astype(np.uint8))

    def _bits(self, request: dict[str, Any]) -> None:
        rows = _recv_rows(self.channel, len(self.codes))
        bits = self.model.bits(self.codes[rows], int(request["from"]), int(request["to"]))
        self.channel.send_array(pack_bits(bits))

    def _done(self, request: dict[str, Any]) -> tuple[str, int]:
        kept = int(request["trees"])
        self.model.splits = {k: v for k, v in self.model.splits.items() if k[0] < kept}
        assert self.he is not None
        seconds = {**self.seconds, "cpu_so_far": time.process_time() - self.cpu_started}
        self.channel.send_json({"costs": {"he": vars(self.he.costs), "seconds": seconds}})
        return str(request["model_id"]), kept
