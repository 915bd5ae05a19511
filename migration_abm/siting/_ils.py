"""Compiled (numba, cached to disk) swap local search and iterated local search for weighted max coverage.

State of a solution: ``sel`` (open columns), ``pos`` (column -> its slot in ``sel`` or -1), per row ``cnt``
(open columns covering it) and ``own`` (sum of those columns' indices: the sole owner where ``cnt`` is 1).
One best-improvement swap scan costs one pass over the coverage arcs: closing the open column in slot q and
opening column k changes the covered weight by gain_k − loss_q + (weight of rows in k covered only by q).
The kernels draw no random numbers: the caller passes uniforms from a numpy Generator, so a seed gives the
same moves however (and whether) the kernels are compiled.
"""

from __future__ import annotations

import numba as nb
import numpy as np

jit = nb.njit(cache=True, nogil=True, boundscheck=False)
#: Adjacency entries a kick may scan to find the open columns near the first one it closes
KICK_WORK = 50_000


@jit
def cover_state(c_ptr, c_ind, n, sel, pos, cnt, own):  # pragma: no cover - compiled
    """Fill ``pos``, ``cnt`` and ``own`` for the open columns ``sel``."""
    pos[:] = -1
    cnt[:] = 0
    own[:] = 0
    for q in range(sel.shape[0]):
        j = sel[q]
        pos[j] = q
        for t in range(c_ptr[j], c_ptr[j + 1]):
            cnt[c_ind[t]] += 1
            own[c_ind[t]] += j


@jit
def covered_weight(w, cnt):  # pragma: no cover - compiled
    """Weight of the rows with at least one open cover (summed in row order)."""
    v = 0.0
    for i in range(cnt.shape[0]):
        if cnt[i] > 0:
            v += w[i]
    return v


@jit
def solution_value(c_ptr, c_ind, w, sel):  # pragma: no cover - compiled
    """Covered weight of the open columns ``sel``."""
    n = w.shape[0]
    pos, cnt, own = np.empty(c_ptr.shape[0] - 1, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    cover_state(c_ptr, c_ind, n, sel, pos, cnt, own)
    return covered_weight(w, cnt)


@jit
def _move(c_ptr, c_ind, sel, pos, cnt, own, q, k):  # pragma: no cover - compiled
    """Close the column in slot ``q`` and open column ``k`` there."""
    j = sel[q]
    for t in range(c_ptr[j], c_ptr[j + 1]):
        cnt[c_ind[t]] -= 1
        own[c_ind[t]] -= j
    for t in range(c_ptr[k], c_ptr[k + 1]):
        cnt[c_ind[t]] += 1
        own[c_ind[t]] += k
    pos[j] = -1
    pos[k] = q
    sel[q] = k


@jit
def swap_search(c_ptr, c_ind, w, sel, pos, cnt, own, allowed, tol, max_iter):  # pragma: no cover - compiled
    """Best-improvement 1-swap search from the state given (updated in place). Returns the swaps made."""
    m = c_ptr.shape[0] - 1
    p = sel.shape[0]
    loss = np.zeros(p)
    extra = np.zeros(p)
    touched = np.zeros(p, np.int64)
    mark = np.zeros(p, np.bool_)
    swaps = 0
    while swaps < max_iter and p > 0:
        loss[:] = 0.0
        for i in range(cnt.shape[0]):
            if cnt[i] == 1:
                loss[pos[own[i]]] += w[i]
        qmin = 0
        for q in range(1, p):
            if loss[q] < loss[qmin]:
                qmin = q
        best, bk, bq = tol, -1, -1
        for k in range(m):
            if pos[k] >= 0 or not allowed[k]:
                continue
            g = 0.0
            nt = 0
            for t in range(c_ptr[k], c_ptr[k + 1]):
                i = c_ind[t]
                if cnt[i] == 0:
                    g += w[i]
                elif cnt[i] == 1:
                    q = pos[own[i]]
                    if not mark[q]:
                        mark[q] = True
                        touched[nt] = q
                        nt += 1
                    extra[q] += w[i]
            if g - loss[qmin] > best:
                best, bk, bq = g - loss[qmin], k, qmin
            for s in range(nt):
                q = touched[s]
                v = g + extra[q] - loss[q]
                if v > best:
                    best, bk, bq = v, k, q
                extra[q] = 0.0
                mark[q] = False
        if bk < 0:
            break
        _move(c_ptr, c_ind, sel, pos, cnt, own, bq, bk)
        swaps += 1
    return swaps


@jit
def _draw(prob, cand, nc, u):  # pragma: no cover - compiled
    """Index into ``cand[:nc]`` drawn in proportion to ``prob`` of its entries (-1 when empty)."""
    tot = 0.0
    for t in range(nc):
        tot += prob[cand[t]]
    left = u * tot
    for t in range(nc):
        left -= prob[cand[t]]
        if left <= 0.0:
            return t
    return nc - 1


@jit
def _kick(c_ptr, c_ind, b_ptr, b_ind, prob, sel, pos, cnt, own, allowed, u, k, mark, cand):  # pragma: no cover
    """Close ``k`` open columns near a random one (within two steps of the column adjacency ``b``) and open
    as many closed columns adjacent to them, drawn in proportion to ``prob``."""
    p = sel.shape[0]
    j0 = sel[min(int(u[0] * p), p - 1)]
    nc = 0
    work = 0
    for t in range(b_ptr[j0], b_ptr[j0 + 1] + 1):  # open columns two steps from j0 (the last t is j0)
        c = b_ind[t] if t < b_ptr[j0 + 1] else j0
        work += b_ptr[c + 1] - b_ptr[c]
        if work > KICK_WORK:
            break
        for t2 in range(b_ptr[c], b_ptr[c + 1]):
            c2 = b_ind[t2]
            if pos[c2] >= 0 and c2 != j0 and not mark[c2]:
                mark[c2] = True
                cand[nc] = c2
                nc += 1
    for t in range(nc):
        mark[cand[t]] = False
    drop = np.empty(k, np.int64)
    drop[0] = j0
    nd = 1
    while nd < k and nc > 0:
        t = min(int(u[nd] * nc), nc - 1)
        drop[nd] = cand[t]
        cand[t] = cand[nc - 1]
        nc -= 1
        nd += 1
    nc = 0
    for s in range(nd):  # closed columns adjacent to the dropped ones (and the dropped ones)
        j = drop[s]
        for t in range(b_ptr[j], b_ptr[j + 1] + 1):
            c = b_ind[t] if t < b_ptr[j + 1] else j
            if (pos[c] < 0 or c == j) and allowed[c] and not mark[c]:
                mark[c] = True
                cand[nc] = c
                nc += 1
    for t in range(nc):
        mark[cand[t]] = False
    for s in range(nd):
        q = pos[drop[s]]
        t = _draw(prob, cand, nc, u[4 + s])
        if t < 0:
            continue
        c = cand[t]
        cand[t] = cand[nc - 1]
        nc -= 1
        if c != drop[s]:
            if pos[c] >= 0:  # a dropped column drawn for another's slot: it stays where it is
                continue
            _move(c_ptr, c_ind, sel, pos, cnt, own, q, c)


@jit
def _scatter(c_ptr, c_ind, prob, sel, pos, cnt, own, allowed, u, k, drop):  # pragma: no cover - compiled
    """Close ``k`` random open columns; open as many closed columns drawn in proportion to ``prob``."""
    m = c_ptr.shape[0] - 1
    p = sel.shape[0]
    for s in range(k):  # k distinct slots: skip a uniform number of those not yet dropped
        skip = min(int(u[s] * (p - s)), p - s - 1)
        q = 0
        while True:
            taken = False
            for t in range(s):
                taken |= drop[t] == q
            if not taken:
                if skip == 0:
                    break
                skip -= 1
            q += 1
        drop[s] = q
    for s in range(k):  # each dropped slot gets a closed column drawn by prob
        tot = 0.0
        for j in range(m):
            if pos[j] < 0 and allowed[j]:
                tot += prob[j]
        left = u[4 + s] * tot
        pick = -1
        for j in range(m):
            if pos[j] < 0 and allowed[j]:
                pick = j
                left -= prob[j]
                if left <= 0.0:
                    break
        if pick >= 0:
            _move(c_ptr, c_ind, sel, pos, cnt, own, drop[s], pick)


@jit
def ils_rounds(c_ptr, c_ind, b_ptr, b_ind, w, prob, cur, best, allowed, u, accept, tol, local):  # pragma: no cover
    """One round of iterated local search per row of the uniforms ``u`` (rounds × 8), from ``cur``
    (updated in place, like ``best``).

    A round closes 1–4 open columns (cycling) and opens as many drawn in proportion to ``prob``: with
    ``local``, columns near a random open one and closed columns adjacent to those (``b``: the column
    adjacency, columns sharing a row); otherwise anywhere. It then runs the swap search and keeps the
    result if it is at most ``accept`` (absolute) worse than the current solution. Returns (current value, best value, index of the last round that
    improved the best, or -1).
    """
    m = c_ptr.shape[0] - 1
    n = w.shape[0]
    p = cur.shape[0]
    pos = np.empty(m, np.int64)
    cnt = np.empty(n, np.int64)
    own = np.empty(n, np.int64)
    cover_state(c_ptr, c_ind, n, best, pos, cnt, own)
    best_v = covered_weight(w, cnt)
    cover_state(c_ptr, c_ind, n, cur, pos, cnt, own)
    cur_v = covered_weight(w, cnt)
    sel = cur.copy()
    last = -1
    if p == 0:
        return cur_v, best_v, last
    drop = np.empty(4, np.int64)
    mark = np.zeros(m, np.bool_)
    cand = np.empty(m, np.int64)
    for r in range(u.shape[0]):
        k = min(p, 1 + r % 4)
        sel[:] = cur
        cover_state(c_ptr, c_ind, n, sel, pos, cnt, own)
        if local:
            _kick(c_ptr, c_ind, b_ptr, b_ind, prob, sel, pos, cnt, own, allowed, u[r], k, mark, cand)
        else:
            _scatter(c_ptr, c_ind, prob, sel, pos, cnt, own, allowed, u[r], k, drop)
        swap_search(c_ptr, c_ind, w, sel, pos, cnt, own, allowed, tol, 1 << 30)
        v = covered_weight(w, cnt)
        if v > cur_v - accept:
            cur[:] = sel
            cur_v = v
        if v > best_v + tol:
            best[:] = sel
            best_v = v
            last = r
    return cur_v, best_v, last
