"""Attention analysis as data: heads clustered by what they attend to, named patterns with the rule that
named each, attention rollout and attention flow across layers (Abnar & Zuidema 2020). numpy only.

The input is, per input text, a list of layers, each an array (heads, T, T) whose rows are distributions
over the keys (a softmax attention; a recurrent layer's "what each token reads" after `as_distributions`).
Layers may have different head counts (a hybrid's attention layer beside its single-matrix Mamba layers).

- Distance between two heads: the mean, over every input and every query row t ≥ 1, of the Jensen–Shannon
  divergence (base 2, so in [0, 1]) of their rows. Row 0 is left out: a causal head's first row is the
  same one-hot for every head and would only pull all distances down.
- Clustering: average linkage (UPGMA) on those distances, in scipy's linkage-matrix format, cut into k
  groups or at a distance; ties break on the lowest cluster index, so a fixed batch gives fixed groups.
- Patterns (PATTERN_RULES, a table): each head's score for every rule, pooled over the batch's rows; the
  head is named by the rule that passes its threshold by the widest margin, or "mixed" when none does.
- Rollout: per layer the heads' mean A, Â = 0.5·A + 0.5·I with rows renormalised (the residual stream),
  multiplied from the first layer up. Flow: the maximum flow from each output token to each input token
  through the layer graph whose edge capacities are Â's entries (Edmonds–Karp on each pair's pruned
  graph), for inputs of at most FLOW_MAX_TOKENS tokens: T² max-flows grow quickly past that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

FLOW_MAX_TOKENS = 64       # attention flow solves one max-flow per (output, input) pair: T²/2 of them
MIXED = "mixed"            # the name of a head that no rule names
_EPS = 1e-12


# ---------------------------------------------------------------- distributions and distances

def as_distributions(matrix: np.ndarray) -> np.ndarray:
    """Rows as distributions: |M| over its row sum. A row with no mass at all reads as uniform over the
    causal prefix 0..t (nothing singled out). Rows that already are distributions come back unchanged."""
    m = np.abs(np.asarray(matrix, np.float64))
    sums = m.sum(-1, keepdims=True)
    t = m.shape[-1]
    prefix = np.tril(np.ones((m.shape[-2], t)))
    fallback = np.broadcast_to(prefix / prefix.sum(-1, keepdims=True), m.shape)
    return np.where(sums > _EPS, m / np.maximum(sums, _EPS), fallback)


def _plogq(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    # p·log2(p/q) with 0·log 0 = 0
    safe = p > 0
    return np.where(safe, p * np.log2(np.where(safe, p, 1.0) / np.where(safe, q, 1.0)), 0.0)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence of distributions along the last axis, base 2: 0 for equal rows,
    1 for rows with disjoint support. Broadcasts like numpy."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = 0.5 * (p + q)
    value = 0.5 * _plogq(p, m).sum(-1) + 0.5 * _plogq(q, m).sum(-1)
    return np.clip(value, 0.0, 1.0)


def stack_heads(layers) -> np.ndarray:
    """One input's layers as (all heads, T, T), layer by layer."""
    return np.concatenate([np.asarray(layer, np.float64) for layer in layers], axis=0)


def head_index(layers) -> list[tuple[int, int]]:
    """(layer, head) of every row of stack_heads(layers)."""
    return [(layer, head) for layer, array in enumerate(layers) for head in range(len(array))]


def head_distances(batch) -> np.ndarray:
    """(H, H) distances between the heads: the mean over all inputs' query rows t ≥ 1 of the JS divergence
    of the two heads' rows. `batch` is a list of inputs, each a list of layers (heads, T, T); T may differ
    between inputs."""
    total, rows = None, 0
    for layers in batch:
        heads = stack_heads(layers)[:, 1:]                       # (H, T−1, T)
        pairwise = js_divergence(heads[:, None], heads[None, :])  # (H, H, T−1)
        total = pairwise.sum(-1) if total is None else total + pairwise.sum(-1)
        rows += heads.shape[1]
    if total is None or rows == 0:
        raise ValueError("clustering needs at least one input of two or more tokens")
    distances = total / rows
    np.fill_diagonal(distances, 0.0)
    return 0.5 * (distances + distances.T)


# ---------------------------------------------------------------- hierarchical clustering

def average_linkage(distances: np.ndarray) -> np.ndarray:
    """UPGMA on a symmetric distance matrix, as scipy.cluster.hierarchy.linkage(method="average") writes
    it: row i merges clusters Z[i, 0] and Z[i, 1] (leaves 0..n−1, merge i makes cluster n+i) at distance
    Z[i, 2] into a cluster of Z[i, 3] leaves. The closest pair merges first; a tie goes to the pair with
    the lowest ids, so the result is a function of the matrix alone."""
    d = np.array(distances, np.float64)
    n = len(d)
    ids = list(range(n))            # cluster id of each row of d
    sizes = [1] * n
    active = np.ones(n, bool)
    merges = []
    for step in range(n - 1):
        masked = np.where(active[:, None] & active[None, :] & ~np.eye(n, dtype=bool), d, np.inf)
        best = masked.min()
        candidates = np.argwhere(masked == best)
        # lowest cluster ids first (not rows): the row a merged cluster lives on is an accident of order
        a, b = min(((int(i), int(j)) for i, j in candidates), key=lambda ij: sorted((ids[ij[0]], ids[ij[1]])))
        lo, hi = sorted((ids[a], ids[b]))
        size = sizes[a] + sizes[b]
        merges.append((lo, hi, best, size))
        merged = (sizes[a] * d[a] + sizes[b] * d[b]) / size    # average linkage: size-weighted mean
        d[a], d[:, a] = merged, merged
        d[a, a] = 0.0
        active[b] = False
        ids[a], sizes[a] = n + step, size
    return np.array(merges, np.float64).reshape(-1, 4)


def cut_clusters(linkage: np.ndarray, n: int, k: int | None = None, threshold: float | None = None) -> np.ndarray:
    """Cluster label of each of the n leaves: the tree cut into k groups, or at `threshold` (merges at a
    distance ≤ threshold kept). Labels count 0, 1, … in the order of each group's lowest leaf."""
    if (k is None) == (threshold is None):
        raise ValueError("give exactly one of k and threshold")
    if k is not None:
        if not 1 <= k <= max(n, 1):
            raise ValueError(f"k must be between 1 and {n}, got {k}")
        kept = n - k
    else:
        kept = int(np.sum(linkage[:, 2] <= threshold)) if len(linkage) else 0
    parent = list(range(n + len(linkage)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for step, (a, b, _, _) in enumerate(linkage[:kept]):
        parent[int(a)] = parent[int(b)] = n + step
    roots = [root(i) for i in range(n)]
    order = {}
    for r in roots:
        order.setdefault(r, len(order))
    return np.array([order[r] for r in roots], np.int64)


@dataclass(frozen=True)
class Dendrogram:
    """Drawing data: `order` the leaves left to right; per merge a ∏-shaped link from the left child's
    (x, height) up to the merge's height and down to the right child's (x, height); x in leaf units."""

    order: np.ndarray        # (n,) leaf ids
    links: np.ndarray        # (n−1, 5): x_left, height_left, x_right, height_right, height


def dendrogram(linkage: np.ndarray, n: int) -> Dendrogram:
    """Leaf order (each merge's smaller-id child on the left, as scipy's) and link coordinates."""
    children = {n + i: (int(a), int(b)) for i, (a, b, _, _) in enumerate(linkage)}
    order: list[int] = []
    stack = [n + len(linkage) - 1] if len(linkage) else list(range(n))[::-1]
    while stack:
        node = stack.pop()
        if node < n:
            order.append(node)
        else:
            left, right = children[node]
            stack += [right, left]
    x = {leaf: float(i) for i, leaf in enumerate(order)}
    height = dict.fromkeys(range(n), 0.0)
    links = []
    for i, (a, b, dist, _) in enumerate(linkage):
        a, b = int(a), int(b)
        x[n + i], height[n + i] = 0.5 * (x[a] + x[b]), float(dist)
        links.append((x[a], height[a], x[b], height[b], float(dist)))
    return Dendrogram(np.array(order, np.int64), np.array(links, np.float64).reshape(-1, 5))


# ---------------------------------------------------------------- named patterns

def _rows_from(matrix: np.ndarray, first: int = 2) -> np.ndarray:
    # Query rows from t = 2: there t−1, 0 and t are three different keys, so the rules cannot agree by accident.
    return np.arange(first, matrix.shape[0])


def _previous(matrix, tokens):
    t = _rows_from(matrix)
    return matrix[t, t - 1]


def _first(matrix, tokens):
    return matrix[_rows_from(matrix), 0]


def _self(matrix, tokens):
    t = _rows_from(matrix)
    return matrix[t, t]


def induction_targets(tokens) -> tuple[np.ndarray, np.ndarray]:
    """(queries t, keys j+1): t's token occurred before, most recently at j, and j+1 is none of 0, t−1, t
    (where the previous-token, sink and self rules would claim the same mass)."""
    last: dict = {}
    queries, keys = [], []
    for t, token in enumerate(tokens):
        j = last.get(token)
        if j is not None and j + 1 not in (0, t - 1, t):
            queries.append(t)
            keys.append(j + 1)
        last[token] = t
    return np.array(queries, np.int64), np.array(keys, np.int64)


def _induction(matrix, tokens):
    queries, keys = induction_targets(tokens)
    return matrix[queries, keys]


def _uniform(matrix, tokens):
    t = _rows_from(matrix)
    rows = matrix[t]
    entropy = -np.where(rows > 0, rows * np.log(np.where(rows > 0, rows, 1.0)), 0.0).sum(-1)
    # 1 for a row spread evenly over the keys it can read: its t+1 under a causal mask, all T in an encoder
    # (vit's patches, whisper's frames), where attention above the diagonal shows there is no mask
    keys = np.full(len(t), matrix.shape[1], np.float64) if np.triu(matrix, 1).sum() > 1e-9 else t + 1.0
    return entropy / np.log(keys)


@dataclass(frozen=True)
class PatternRule:
    name: str
    threshold: float
    measure: Callable            # (matrix (T, T) of distributions, tokens) -> one value per query row that counts
    says: str                    # the score in words: "{score:.2f} of its attention goes to t−1"


# The rules, in the order a tie between equal margins is decided. Scores are pooled over every input's rows.
PATTERN_RULES: tuple[PatternRule, ...] = (
    PatternRule("previous token", 0.5, _previous, "{score:.2f} of its attention goes to t−1"),
    PatternRule("first token / sink", 0.5, _first, "{score:.2f} of its attention goes to position 0"),
    PatternRule("diagonal / self", 0.5, _self, "{score:.2f} of its attention stays on t itself"),
    PatternRule("induction", 0.4, _induction,
                "{score:.2f} of its attention goes to the token after the previous occurrence of t's token"),
    PatternRule("uniform", 0.9, _uniform, "its rows' entropy is {score:.2f} of an even spread's over the keys each row can read"),
)
RULES_BY_NAME = {rule.name: rule for rule in PATTERN_RULES}


@dataclass(frozen=True)
class HeadPattern:
    """A head's score under every rule (NaN where no row of the batch applied), the name chosen and why."""

    name: str
    scores: dict[str, float]
    reason: str

    @property
    def threshold(self) -> float | None:
        rule = RULES_BY_NAME.get(self.name)
        return None if rule is None else rule.threshold


def pattern_scores(matrices, token_lists) -> dict[str, float]:
    """One head's score under every rule: the mean of the rule's values over all rows of all inputs
    (matrices[n] is the head's (T, T) on the input token_lists[n])."""
    scores = {}
    for rule in PATTERN_RULES:
        values = [rule.measure(np.asarray(m, np.float64), list(tokens)) for m, tokens in zip(matrices, token_lists)]
        pooled = np.concatenate(values) if values else np.empty(0)
        scores[rule.name] = float(pooled.mean()) if len(pooled) else float("nan")
    return scores


def name_pattern(scores: dict[str, float]) -> HeadPattern:
    """The rule whose score passes its threshold by the widest margin (score / threshold) names the head."""
    passed = [(scores[r.name] / r.threshold, -i, r) for i, r in enumerate(PATTERN_RULES)
              if np.isfinite(scores[r.name]) and scores[r.name] >= r.threshold]
    if passed:
        rule = max(passed, key=lambda item: item[:2])[2]
        return HeadPattern(rule.name, scores, f"named '{rule.name}': {rule.says.format(score=scores[rule.name])} "
                                              f"(threshold {rule.threshold:g})")
    finite = [r for r in PATTERN_RULES if np.isfinite(scores[r.name])]
    if not finite:
        return HeadPattern(MIXED, scores, "no rule applied to these inputs")
    closest = max(finite, key=lambda r: scores[r.name] / r.threshold)
    return HeadPattern(MIXED, scores, f"no rule reached its threshold; closest '{closest.name}': "
                                      f"{closest.says.format(score=scores[closest.name])} "
                                      f"(threshold {closest.threshold:g})")


# ---------------------------------------------------------------- rollout and flow

def residual_attention(layers) -> list[np.ndarray]:
    """Per layer Â = 0.5·mean_h(A) + 0.5·I, rows renormalised: attention with the residual stream's share."""
    out = []
    for layer in layers:
        a = np.asarray(layer, np.float64).mean(0)
        a_hat = 0.5 * a + 0.5 * np.eye(len(a))
        out.append(a_hat / a_hat.sum(-1, keepdims=True))
    return out


def rollout(layers) -> np.ndarray:
    """(L, T, T): after layer l, row i is how token i's representation draws on the input tokens,
    Â_l · … · Â_1 (Abnar & Zuidema's rollout, first layer first)."""
    product, steps = None, []
    for a_hat in residual_attention(layers):
        product = a_hat if product is None else a_hat @ product
        steps.append(product)
    return np.stack(steps)


def max_flow(capacity: np.ndarray, source: int, sink: int) -> float:
    """Maximum flow from source to sink of a dense capacity matrix (Edmonds–Karp: shortest augmenting
    paths, each found by a breadth-first search that expands the whole frontier at once)."""
    return _edmonds_karp(capacity, source, sink)[0]


def max_flow_edges(capacity: np.ndarray, source: int, sink: int) -> tuple[float, np.ndarray]:
    """The maximum flow's value and what each edge carries in the flow Edmonds–Karp finds (one of the
    maximum flows: where several exist, the routing is not unique, the value is)."""
    total, residual = _edmonds_karp(capacity, source, sink)
    capacity = np.asarray(capacity, np.float64)
    return total, np.where(capacity > 0, np.clip(capacity - residual, 0.0, None), 0.0)


def _edmonds_karp(capacity: np.ndarray, source: int, sink: int) -> tuple[float, np.ndarray]:
    residual = np.array(capacity, np.float64)
    n, total = len(residual), 0.0
    while True:
        parent = np.full(n, -1)
        parent[source] = source
        frontier = np.array([source])
        while len(frontier) and parent[sink] < 0:
            opens = (residual[frontier] > _EPS) & (parent < 0)[None, :]
            reached = opens.any(0)
            parent[reached] = frontier[opens.argmax(0)[reached]]    # first frontier node that reaches it
            frontier = np.flatnonzero(reached)
        if parent[sink] < 0:
            return total, residual
        path = [sink]
        while path[-1] != source:
            path.append(int(parent[path[-1]]))
        heads, tails = np.array(path[1:]), np.array(path[:-1])      # edges heads[k] -> tails[k]
        bottleneck = residual[heads, tails].min()
        residual[heads, tails] -= bottleneck
        residual[tails, heads] += bottleneck
        total += bottleneck


def layer_graph(layers) -> np.ndarray:
    """The flow graph as a dense capacity matrix: node l·T + t is token t after layer l (l = 0: the input
    embeddings); node (l, a) sends to (l−1, b) up to Â_l[a, b]."""
    a_hats = residual_attention(layers)
    T, L = len(a_hats[0]), len(a_hats)
    capacity = np.zeros(((L + 1) * T, (L + 1) * T))
    for l, a_hat in enumerate(a_hats, start=1):
        capacity[l * T:(l + 1) * T, (l - 1) * T:l * T] = a_hat
    return capacity


def attention_flow(layers, max_tokens: int = FLOW_MAX_TOKENS, progress=None) -> np.ndarray:
    """(T, T): flow[i, j] is the maximum flow from output token i (after the last layer) to input token j
    through the layer graph. Each pair's graph keeps only the nodes on some path from i to j (for causal
    attention the tokens j..i), which is what keeps T²/2 max-flows affordable up to `max_tokens`."""
    T, L = len(layers[0][0]), len(layers)
    if T > max_tokens:
        raise ValueError(f"attention flow is computed for inputs of at most {max_tokens} tokens, not {T}")
    capacity = layer_graph(layers)
    reach, back = _reachability(capacity, T, L)
    flow = np.zeros((T, T))
    pairs = [(i, j) for i in range(T) for j in range(T) if reach[i, j]]
    for done, (i, j) in enumerate(pairs, start=1):
        keep = np.flatnonzero(reach[i] & back[j])
        sub = capacity[np.ix_(keep, keep)]
        flow[i, j] = max_flow(sub, int(np.searchsorted(keep, L * T + i)), int(np.searchsorted(keep, j)))
        if progress is not None:
            progress(done, len(pairs))
    return flow


def _reachability(capacity: np.ndarray, T: int, L: int) -> tuple[np.ndarray, np.ndarray]:
    """reach[i]: the layer graph's nodes reachable from output token i; back[j]: those reaching input j."""
    edges = capacity > _EPS
    n = len(capacity)
    reach = np.zeros((T, n), bool)          # reach[i]: nodes reachable from output token i, layer by layer down
    reach[np.arange(T), L * T + np.arange(T)] = True
    back = np.zeros((T, n), bool)           # back[j]: nodes from which input token j is reached, layer by layer up
    back[np.arange(T), np.arange(T)] = True
    for l in range(L, 0, -1):
        reach[:, (l - 1) * T:l * T] = reach[:, l * T:(l + 1) * T] @ edges[l * T:(l + 1) * T, (l - 1) * T:l * T]
    for l in range(1, L + 1):
        back[:, l * T:(l + 1) * T] = back[:, (l - 1) * T:l * T] @ edges[l * T:(l + 1) * T, (l - 1) * T:l * T].T
    return reach, back


# ---------------------------------------------------------------- per edge, for the ribbons

def rollout_edges(layers, output: int) -> tuple[np.ndarray, np.ndarray]:
    """(edges (L, T, T), inputs (T,)): edges[l - 1][i, j] is the share of output token `output`'s rollout
    (after the last layer) that goes through the edge from token j after layer l − 1 to token i after layer
    l: (Â_L ⋯ Â_{l+1})[output, i] · Â_l[i, j]. Each layer's edges sum to 1; `inputs` is the rollout's row
    for `output`, what reaches each input token."""
    a_hats = residual_attention(layers)
    above = np.zeros(len(a_hats[0]))
    above[output] = 1.0
    edges = []
    for a_hat in reversed(a_hats):
        edges.append(above[:, None] * a_hat)
        above = above @ a_hat
    return np.stack(edges[::-1]), above


def flow_edges(layers, output: int, max_tokens: int = FLOW_MAX_TOKENS) -> tuple[np.ndarray, np.ndarray]:
    """(edges (L, T, T), inputs (T,)) for attention flow: what each layer-graph edge carries in the maximum
    flows from output token `output` to every input token (Edmonds–Karp's routing of each, summed), over
    the sum of those flows; `inputs` is flow[output, :] over that sum. Like rollout_edges, each layer's
    edges sum to 1. A maximum flow's routing is one of several; its value is not."""
    T, L = len(layers[0][0]), len(layers)
    if T > max_tokens:
        raise ValueError(f"attention flow is computed for inputs of at most {max_tokens} tokens, not {T}")
    capacity = layer_graph(layers)
    reach, back = _reachability(capacity, T, L)
    carried = np.zeros_like(capacity)
    values = np.zeros(T)
    for j in np.flatnonzero(reach[output, :T]):
        keep = np.flatnonzero(reach[output] & back[j])
        values[j], flows = max_flow_edges(capacity[np.ix_(keep, keep)], int(np.searchsorted(keep, L * T + output)),
                                          int(np.searchsorted(keep, j)))
        carried[np.ix_(keep, keep)] += flows
    total = max(values.sum(), _EPS)
    edges = np.stack([carried[l * T:(l + 1) * T, (l - 1) * T:l * T] for l in range(1, L + 1)]) / total
    return edges, values / total


# ---------------------------------------------------------------- all of it for one batch

@dataclass
class HeadsAnalysis:
    """Everything the heads view and `llmviz attention` show for one model and one batch of inputs,
    batch input 0 being the one on screen (its rollout and flow)."""

    heads: list[tuple[int, int]]          # (layer, head) of each head, in stack order
    distances: np.ndarray                 # (H, H)
    linkage: np.ndarray                   # (H−1, 4)
    clusters: np.ndarray                  # (H,) group of each head
    patterns: list[HeadPattern]
    rollout: np.ndarray                   # (L, T, T) on input 0
    flow: np.ndarray | None               # (T, T) on input 0, None past flow_max_tokens
    flow_note: str = ""
    cut: str = ""                         # how the tree was cut, in words
    cut_height: float | None = None       # the distance the cut lies at (None: cut into k groups)
    inputs: int = 0

    @property
    def dendrogram(self) -> Dendrogram:
        return dendrogram(self.linkage, len(self.heads))


SAME_WORK = 0.1   # heads closer than this (mean JS divergence) are doing the same thing: never split apart


def widest_gap_threshold(linkage: np.ndarray) -> float:
    """Where the tree is cut when neither k nor a distance is asked for: in the widest gap between two
    successive merge heights (the first height counting from 0), among the gaps that end above SAME_WORK;
    the midpoint of that gap. With no such gap every merge is kept (one group)."""
    heights = np.concatenate([[0.0], np.sort(linkage[:, 2])])
    gaps = np.diff(heights)
    gaps[heights[1:] < SAME_WORK] = -1.0
    if not len(gaps) or gaps.max() < 0:
        return float(heights[-1])
    i = int(gaps.argmax())
    return float(0.5 * (heights[i] + heights[i + 1]))


def analyse(batch, token_lists, k: int | None = None, threshold: float | None = None,
            flow_max_tokens: int = FLOW_MAX_TOKENS, progress=None) -> HeadsAnalysis:
    """Clusters, patterns, rollout and flow of one model's heads over a batch: batch[n] is input n's layers
    (each (heads, T_n, T_n) of distributions), token_lists[n] its token ids."""
    if not batch:
        raise ValueError("the batch is empty")
    heads = head_index(batch[0])
    distances = head_distances(batch)
    linkage = average_linkage(distances)
    widest_gap = k is None and threshold is None
    if widest_gap:
        threshold = widest_gap_threshold(linkage)
    k = min(k, len(heads)) if k is not None else None
    clusters = cut_clusters(linkage, len(heads), k=k, threshold=threshold)
    stacked = [stack_heads(layers) for layers in batch]
    patterns = [name_pattern(pattern_scores([s[h] for s in stacked], token_lists)) for h in range(len(heads))]
    current = batch[0]
    T = len(current[0][0])
    if T <= flow_max_tokens:
        flow, note = attention_flow(current, flow_max_tokens, progress), ""
    else:
        flow, note = None, f"flow is computed for inputs of at most {flow_max_tokens} tokens; this one has {T}"
    cut = (f"cut into {k} groups" if k is not None else f"cut at a distance of {threshold:.3g}"
           + (" (the widest gap between merge heights)" if widest_gap else ""))
    return HeadsAnalysis(heads, distances, linkage, clusters, patterns, rollout(current), flow, note, cut,
                         threshold if k is None else None, len(batch))
