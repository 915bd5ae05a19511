"""Compiled household kernels (numba, cached to disk): the yearly passes over the household columns.

Each kernel is a plain loop over rows that fuses what used to be several numpy passes (masks, gathers,
bincounts, re-sorts). Kernels draw no random numbers and call no transcendental function: uniforms and
binomials come from the model's numpy Generator, and every ``exp``/``log`` is taken by numpy on a
buffer, so a seed gives the same results bit for bit however (and whether) the kernels are compiled.
Sums run in row order, as ``np.bincount`` does, so totals are bit-identical to the numpy reference.
District-level terms are precomputed in Python and passed in as arrays (docs/ODD.md §3.4).
"""

from __future__ import annotations

import numba as nb
import numpy as np

jit = nb.njit(cache=True, nogil=True, boundscheck=False)


# ---- member table -----------------------------------------------------------------------------------
@jit
def member_counts(ages, weight, size, workers, kids, fertile, persons):  # pragma: no cover - compiled
    """Per row: members, working-age (16-64) members, children 6-14, members 20-39, and persons."""
    n, k = ages.shape
    for i in range(n):
        s = 0
        w = 0
        c6 = 0
        f = 0
        for c in range(k):
            a = ages[i, c]
            if a < 0:
                break
            s += 1
            w += 16 <= a <= 64
            c6 += 6 <= a <= 14
            f += 20 <= a <= 39
        size[i] = s
        workers[i] = w
        kids[i] = c6 > 0
        fertile[i] = f
        persons[i] = s * weight[i]


@jit
def age_and_die(ages, u, q, deaths, weight, size, workers, kids, fertile, persons):  # pragma: no cover
    """Age every member a year; the j-th member (row-major) dies if ``u[j] < q[age]``. Survivors keep
    their descending order (shifted left over the dead); ``deaths`` gets deaths per row, and the
    member counts (as :func:`member_counts`) are refreshed in the same pass."""
    n, k = ages.shape
    j = 0
    for i in range(n):
        dead = 0
        w = 0
        c6 = 0
        f = 0
        for c in range(k):
            a = ages[i, c]
            if a < 0:
                break
            a += 1
            if u[j] < q[a]:
                dead += 1
                ages[i, c] = -1
            else:
                ages[i, c - dead] = a
                if dead:
                    ages[i, c] = -1
                w += 16 <= a <= 64
                c6 += 6 <= a <= 14
                f += 20 <= a <= 39
            j += 1
        deaths[i] = dead
        s = size[i] - dead
        size[i] = s
        workers[i] = w
        kids[i] = c6 > 0
        fertile[i] = f
        persons[i] = s * weight[i]


@jit
def weighted_sum_by(key, values, weight, n_keys):  # pragma: no cover - compiled
    """``np.bincount(key, weights=values * weight)`` in one pass (row order)."""
    out = np.zeros(n_keys)
    for i in range(len(key)):
        out[key[i]] += values[i] * weight[i]
    return out


@jit
def add_births(ages, size, persons, weight, rows, births, district, n):  # pragma: no cover - compiled
    """Newborns (age 0) fill the first free slots of ``rows``; ``births`` is capped in place by the
    free slots. Newborns trail the older members, so the descending order holds. Returns births
    (persons) per district."""
    k = ages.shape[1]
    out = np.zeros(n)
    for t in range(len(rows)):
        i = rows[t]
        s = size[i]
        b = min(births[t], k - s)
        births[t] = b
        for c in range(s, s + b):
            ages[i, c] = 0
        size[i] = s + b
        persons[i] = (s + b) * weight[i]
        out[district[i]] += b * weight[i]
    return out


@jit
def young_members(ages, lo, hi):  # pragma: no cover - compiled
    """(row, slot) of every member aged lo..hi who is not the head, in row-major order."""
    n, k = ages.shape
    count = 0
    for i in range(n):
        for c in range(1, k):
            a = ages[i, c]
            if a < 0:
                break
            count += lo <= a <= hi
    r = np.empty(count, np.int64)
    s = np.empty(count, np.int64)
    j = 0
    for i in range(n):
        for c in range(1, k):
            a = ages[i, c]
            if a < 0:
                break
            if lo <= a <= hi:
                r[j] = i
                s[j] = c
                j += 1
    return r, s


@jit
def remove_members(ages, rows, slots, size, workers, fertile, persons, weight):  # pragma: no cover
    """Remove members (row, slot) aged 20-29 (working age, fertile, not children), keeping each row's
    descending order; slots of one row come in increasing order."""
    t = 0
    m = len(rows)
    while t < m:
        i = rows[t]
        gone = 0
        k = ages.shape[1]
        c = slots[t]
        while t < m and rows[t] == i:
            t += 1
            gone += 1
            nxt = slots[t] if t < m and rows[t] == i else k
            for cc in range(c + 1, nxt):
                ages[i, cc - gone] = ages[i, cc]
            c = nxt
        for cc in range(k - gone, k):
            ages[i, cc] = -1
        size[i] -= gone
        workers[i] -= gone
        fertile[i] -= gone
        persons[i] = size[i] * weight[i]


# ---- compaction -------------------------------------------------------------------------------------
@jit
def compact(keep, ages, district, urban, origin, hukou, hukou_ag, skill, employed, sector, years_here,
            platform_u, weight, size, workers, kids, fertile, persons):  # pragma: no cover - compiled
    """Move the rows with ``keep`` to the front, in order and in place, in every household column and
    member count (one pass); returns their number."""
    k = ages.shape[1]
    j = 0
    for i in range(len(keep)):
        if keep[i]:
            if j != i:
                for c in range(k):
                    ages[j, c] = ages[i, c]
                district[j] = district[i]
                urban[j] = urban[i]
                origin[j] = origin[i]
                hukou[j] = hukou[i]
                hukou_ag[j] = hukou_ag[i]
                skill[j] = skill[i]
                employed[j] = employed[i]
                sector[j] = sector[i]
                years_here[j] = years_here[i]
                platform_u[j] = platform_u[i]
                weight[j] = weight[i]
                size[j] = size[i]
                workers[j] = workers[i]
                kids[j] = kids[i]
                fertile[j] = fertile[i]
                persons[j] = persons[i]
            j += 1
    return j


@jit
def hukou_candidates(in_region, district, urban, hukou, hukou_ag, years_here, employed, local_conversion,
                     min_years, need_job):  # pragma: no cover - compiled
    """Rows eligible for local urban hukou in one office's districts: urban residents without local
    hukou (or with agricultural hukou when local conversion is on), resident ``min_years``, employed if
    ``need_job``."""
    out = np.empty(len(district), np.int64)
    j = 0
    for i in range(len(district)):
        d = district[i]
        if (in_region[d] and urban[i] and (hukou[i] != d or (hukou_ag[i] and local_conversion))
                and years_here[i] >= min_years and (employed[i] or not need_job)):
            out[j] = i
            j += 1
    return out[:j]


@jit
def spare_adults(ages, adult_age):  # pragma: no cover - compiled
    """Mask of every adult but the first of each household (``adult & (cumsum(adult) >= 2)``)."""
    n, k = ages.shape
    out = np.zeros((n, k), np.bool_)
    for i in range(n):
        seen = 0
        for c in range(k):
            if ages[i, c] >= adult_age:
                seen += 1
                out[i, c] = seen >= 2
    return out


@jit
def count_below(cum, key, draw):  # pragma: no cover - compiled
    """Per row t: how many of ``cum[key[t]]`` are below ``draw[t]`` (an inverse-CDF pick)."""
    out = np.empty(len(key), np.int64)
    for t in range(len(key)):
        row = cum[key[t]]
        c = 0
        for j in range(len(row)):
            c += row[j] < draw[t]
        out[t] = c
    return out


# ---- migration decision ------------------------------------------------------------------------------
@jit
def considering(u, p, head, employed, workers, urban, district, origin):  # pragma: no cover - compiled
    """Rows that consider moving: ``u < p[young, old, jobless, rural, district, origin + 1]`` (the
    stage-1 probability table, head young = 18-34, old = 60+)."""
    out = np.empty(len(u), np.int64)
    j = 0
    for i in range(len(u)):
        h = head[i]
        q = p[int(18 <= h <= 34), int(h >= 60), int((not employed[i]) and workers[i] > 0), int(not urban[i]),
              district[i], origin[i] + 1]
        if u[i] < q:
            out[j] = i
            j += 1
    return out[:j]


@jit
def returners(u, origin, district, hukou, employed, workers, p_jobless):  # pragma: no cover - compiled
    """Rows of unsettled migrants (away from their origin without local hukou) drawn to return;
    ``p_jobless[jobless]`` is the return probability."""
    out = np.empty(len(u), np.int64)
    j = 0
    for i in range(len(u)):
        o = origin[i]
        d = district[i]
        if o >= 0 and o != d and hukou[i] != d and u[i] < p_jobless[int((not employed[i]) and workers[i] > 0)]:
            out[j] = i
            j += 1
    return out[:j]


@jit
def utilities(u, lo, home, origin, covered, children, hukou, cost_scale, stay_gain, inc, place, net,
              common, cost, child_term, local_gain, local_child_gain):  # pragma: no cover - compiled
    """Destination utilities of rows lo..lo+len(u) into ``u`` [rows × districts], minus each row's
    maximum. Same terms and the same order of floating-point operations as the numpy reference in
    :func:`migration_abm.migration.choose` (staying at ``home`` keeps the current income)."""
    m, n = u.shape
    for r in range(m):
        i = lo + r
        h = home[i]
        cv = covered[i]
        o = origin[i]
        cs = cost_scale[i]
        for j in range(n):
            x = inc[cv, j] + place[h, j] + net[o, j]
            x += common[j]
            x -= cs * cost[cv, h, j]
            u[r, j] = x
        if children[i]:
            for j in range(n):
                u[r, j] += child_term[j]
        j = hukou[i]
        if j >= 0:
            u[r, j] += local_gain[j] + (1.0 if children[i] else 0.0) * local_child_gain[j]
        if h < n:
            u[r, h] += stay_gain[i]
            u[r, h] -= inc[cv, h]
        top = u[r, 0]
        for j in range(1, n):
            top = max(top, u[r, j])
        for j in range(n):
            u[r, j] -= top


@jit
def inverse_cdf(w, draw, out, lo):  # pragma: no cover - compiled
    """Choice per row of exp-utilities ``w``: the number of cumulative sums below ``draw × total``."""
    m, n = w.shape
    for r in range(m):
        acc = 0.0
        for j in range(n):
            acc += w[r, j]
            w[r, j] = acc
        t = draw[r] * acc
        c = 0
        for j in range(n):
            c += w[r, j] < t
        out[lo + r] = min(c, n - 1)


@jit
def relocate(rows, dest, district, persons, flows, n):  # pragma: no cover - compiled
    """Households ``rows`` that change district move to ``dest``; flows and per-district out/in persons
    are recorded. Returns the rows and destinations that moved and the (out, in) vectors."""
    moved = np.empty(len(rows), np.int64)
    to = np.empty(len(rows), np.int16)
    out = np.zeros(n)
    into = np.zeros(n)
    m = 0
    for t in range(len(rows)):
        i = rows[t]
        d = dest[t]
        if d != district[i]:
            moved[m] = i
            to[m] = d
            m += 1
    for t in range(m):
        i = moved[t]
        flows[district[i], to[t]] += persons[i]
    for t in range(m):
        out[district[moved[t]]] += persons[moved[t]]
    for t in range(m):
        into[to[t]] += persons[moved[t]]
    for t in range(m):
        district[moved[t]] = to[t]
    return moved[:m], to[:m], out, into


# ---- labour market -----------------------------------------------------------------------------------
@jit
def employment(district, sector, employed, workers, weight, n, s):  # pragma: no cover - compiled
    """Employed workers (persons) by [district, sector], summed in row order."""
    out = np.zeros((n, s))
    for i in range(len(district)):  # adding 0.0 for the unemployed leaves the sums unchanged
        out[district[i], sector[i]] += employed[i] * (workers[i] * weight[i])
    return out


@jit
def separate(u, p_sep, district, sector, employed, workers):  # pragma: no cover - compiled
    """Employed households lose their jobs where ``u < p_sep[district, sector]``; returns the job
    seekers afterwards (rows with workers and no job)."""
    out = np.empty(len(u), np.int64)
    j = 0
    for i in range(len(u)):
        if employed[i] and u[i] < p_sep[district[i], sector[i]]:
            employed[i] = False
        if (not employed[i]) and workers[i] > 0:
            out[j] = i
            j += 1
    return out[:j]


@jit
def seeking_workers(seekers, district, workers, weight, n):  # pragma: no cover - compiled
    """Job-seeking workers (persons) per district (seekers in order)."""
    out = np.zeros(n)
    for t in range(len(seekers)):
        i = seekers[t]
        out[district[i]] += workers[i] * weight[i]
    return out


@jit
def hired(seekers, district, rate, uplift, with_uplift, u):  # pragma: no cover - compiled
    """Seekers hired: ``u < rate[district]`` (× (1 + uplift), capped at 1, for platform registrants)."""
    out = np.empty(len(seekers), np.int64)
    j = 0
    for t in range(len(seekers)):
        i = seekers[t]
        p = min(1.0, rate[district[i]] * (1 + uplift[t])) if with_uplift else rate[district[i]]
        if u[t] < p:
            out[j] = i
            j += 1
    return out[:j]


# ---- measurement -------------------------------------------------------------------------------------
@jit
def measure(ages, district, hukou, hukou_ag, urban, employed, sector, workers, weight, persons,
            n, ns, na, s):  # pragma: no cover - compiled
    """One pass for the yearly snapshot: persons by [district, hukou status, age] (age bin 0 unused), and per district persons, households, urban persons, unemployed workers, employment by
    sector. Member slots are summed slot by slot, each in row order (as the numpy reference does)."""
    k = ages.shape[1]
    per_slot = np.zeros((k, n * ns * na))
    pop = np.zeros(n)
    households = np.zeros(n)
    urban_pop = np.zeros(n)
    unemployed = np.zeros(n)
    emp = np.zeros((n, s))
    for i in range(len(district)):
        d = district[i]
        h = hukou[i]
        st = 3 if h == -1 else (2 if h != d else (1 if hukou_ag[i] else 0))
        key = (d * ns + st) * na + 1
        w = weight[i]
        for c in range(k):  # empty slots (age bin 0) trail and are not reported
            if ages[i, c] < 0:
                break
            per_slot[c, key + ages[i, c]] += w
        pop[d] += persons[i]
        households[d] += w
        urban_pop[d] += urban[i] * persons[i]  # (adding 0.0 leaves a sum unchanged)
        emp[d, sector[i]] += employed[i] * (workers[i] * w)
        unemployed[d] += (not employed[i]) * (workers[i] * w)
    hist = np.zeros(n * ns * na)
    for c in range(k):
        hist += per_slot[c]
    return hist, pop, households, urban_pop, unemployed, emp


@jit
def persons_by(district, persons, n):  # pragma: no cover - compiled
    """Persons per district (row order)."""
    out = np.zeros(n)
    for i in range(len(district)):
        out[district[i]] += persons[i]
    return out


@jit
def network_stock(origin, district, persons, n):  # pragma: no cover - compiled
    """(persons per district, persons by [origin, district of residence]) in one pass (households
    from outside Chongqing left out of the second)."""
    pop = np.zeros(n)
    out = np.zeros((n, n))
    for i in range(len(origin)):
        pop[district[i]] += persons[i]
        if origin[i] >= 0:
            out[origin[i], district[i]] += persons[i]
    return pop, out


@jit
def external_p(head, employed, workers, district, table, out):  # pragma: no cover - compiled
    """Out-migration probability per household from ``table[jobless, head aged 18-34, district]``."""
    for i in range(len(head)):
        h = head[i]
        out[i] = table[int((not employed[i]) and workers[i] > 0), int(18 <= h <= 34), district[i]]


@jit
def leave(u, p, district, persons, keep, n):  # pragma: no cover - compiled
    """Households with ``u < p`` leave (``keep`` False); returns persons leaving per district."""
    gone = np.zeros(n)
    for i in range(len(u)):
        go = u[i] < p[i]
        keep[i] = not go
        if go:
            gone[district[i]] += persons[i]
    return gone


@jit
def urbanise(u, p, district, urban, years_here):  # pragma: no cover - compiled
    """Rural households with ``u < p[district]`` move to their district's towns."""
    for i in range(len(u)):
        if not urban[i] and u[i] < p[district[i]]:
            urban[i] = True
            years_here[i] = 0
