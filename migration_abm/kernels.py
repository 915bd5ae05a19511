"""Compiled household kernels (numba, cached to disk): the yearly passes over the household columns.

Each kernel is a plain loop over rows that fuses what used to be several numpy passes (masks, gathers,
bincounts, re-sorts). Kernels draw no random numbers and call no transcendental function: uniforms come
from the model's numpy Generator (births' binomials are numpy's own inversion algorithm run on them, its
exp/log constants computed by the caller with libm as numpy's C code does), and every other
``exp``/``log`` is taken by numpy on a buffer, so a seed gives the same results bit for bit however (and
whether) the kernels are compiled.
Sums run in row order, as ``np.bincount`` does, so totals are bit-identical to the numpy reference.
District-level terms are precomputed in Python and passed in as arrays (docs/ODD.md §3.4).
"""

from __future__ import annotations

import numba as nb
import numpy as np

jit = nb.njit(cache=True, nogil=True, boundscheck=False)


# ---- member table -----------------------------------------------------------------------------------
@jit
def member_counts(ages, weight, size, workers, kids, fertile, persons, head):  # pragma: no cover - compiled
    """Per row: members, working-age (16-64) members, children 6-14, members 20-39, persons, and the
    head's age (the first slot)."""
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
        head[i] = ages[i, 0]


@jit
def age_and_die(ages, u, q, district, weight, out, size, workers, kids, fertile, persons, head):  # pragma: no cover
    """Age every member a year; the j-th member (row-major) dies if ``u[j] < q[age]``. Survivors keep
    their descending order (shifted left over the dead); deaths (persons) are added to ``out`` per
    district in row order, and the member counts (as :func:`member_counts`) are refreshed in the same
    pass."""
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
        if dead:  # (adding 0.0 for the others would leave the sums unchanged)
            out[district[i]] += dead * weight[i]
        s = size[i] - dead
        size[i] = s
        workers[i] = w
        kids[i] = c6 > 0
        fertile[i] = f
        persons[i] = s * weight[i]
        head[i] = ages[i, 0]


@jit
def add_births(fertile, u, start, p, q, qn, bound, ages, size, persons, weight, district, out):  # pragma: no cover
    """Births from row ``start`` on: each row with fertile members draws Binomial(fertile, ``p[d]``) of its
    district d as numpy's ``Generator.binomial`` does for n·p ≤ 30, p ≤ 0.5 (inversion,
    ``random_binomial_inversion``: one uniform of ``u``, in order, per draw, another if rounding leaves it
    past ``bound[d, n]``; ``q`` = 1 − p, ``qn[d, n]`` = exp(n log q[d])), capped by the free slots.
    Newborns (age 0) fill the first free slots, so the descending order holds (and the head stays);
    births (persons) are added to ``out`` per district.
    Returns the row to go on from with more uniforms if ``u`` ran out, else the number of rows."""
    k = ages.shape[1]
    j = 0
    last = len(u) - 1
    for i in range(start, len(fertile)):
        n = np.int64(fertile[i])
        if (n != 0) & (j > last):
            return i
        d = district[i]
        x = 0
        px = qn[d, n]  # 1.0 for n = 0: no draw, no birth, the uniform not used (branch-free)
        v = u[min(j, last)] if last >= 0 else 0.0
        j += n != 0
        while v > px:
            x += 1
            if x > bound[d, n]:
                if j > last:
                    return i  # (the row starts over with a fresh uniform, as numpy's redraw does)
                x = 0
                px = qn[d, n]
                v = u[j]
                j += 1
            else:
                v -= px
                px = ((n - x + 1) * p[d] * px) / (x * q[d])
        if x:  # (a row without births keeps its counts; adding 0.0 would leave the sums unchanged)
            s = size[i]
            b = min(x, k - s)
            for c in range(s, s + b):
                ages[i, c] = 0
            size[i] = s + b
            persons[i] = (s + b) * weight[i]
            out[d] += b * weight[i]
    return len(fertile)


@jit
def young_members(flat, k, lo, hi):  # pragma: no cover - compiled
    """Number of members aged lo..hi who are not the head, in the member table ``flat`` (rows of ``k``
    slots, row-major; empty slots are −1): every slot counted, then the heads taken off (vectorised)."""
    width = np.uint8(hi - lo)
    count = 0
    for t in range(len(flat)):
        count += np.uint8(flat[t] - lo) <= width  # lo <= a <= hi
    for t in range(0, len(flat), k):
        count -= np.uint8(flat[t] - lo) <= width
    return count


@jit
def leaving_members(flat, k, lo, hi, u, rate):  # pragma: no cover - compiled
    """(row, slot) of the members aged lo..hi who are not the head (row-major, as :func:`young_members`
    counts them) whose uniform ``u[j]`` is below ``rate``."""
    r = np.empty(len(u), np.int64)
    s = np.empty(len(u), np.int64)
    width = np.uint8(hi - lo)
    j = 0
    m = 0
    for t in range(len(flat)):
        if np.uint8(flat[t] - lo) <= width:
            c = t % k
            if c != 0:
                r[m] = t // k
                s[m] = c
                m += u[j] < rate
                j += 1
    return r[:m].copy(), s[:m].copy()


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
def compact(keep, use_keep, drop_empty, mask, rows, district, urban, origin, hukou, hukou_ag, skill, employed, sector,
            years_here, platform_u, weight, size, workers, kids, fertile, persons, head):  # pragma: no cover
    """Move the rows with ``keep`` (every row unless ``use_keep``), without those left empty (``size`` 0)
    if ``drop_empty``, to the front, in order and in place, in every household column and member count
    (``rows``: the member table with one unsigned integer per row where its width allows); ``mask`` is
    a work buffer for the rows kept. Column by column, branch-free; returns the number of rows kept."""
    for i in range(len(district)):
        mask[i] = (not use_keep or keep[i]) and (not drop_empty or size[i] > 0)
    m = _compact_column(mask, rows)
    _compact_column(mask, district)
    _compact_column(mask, urban)
    _compact_column(mask, origin)
    _compact_column(mask, hukou)
    _compact_column(mask, hukou_ag)
    _compact_column(mask, skill)
    _compact_column(mask, employed)
    _compact_column(mask, sector)
    _compact_column(mask, years_here)
    _compact_column(mask, platform_u)
    _compact_column(mask, weight)
    _compact_column(mask, size)
    _compact_column(mask, workers)
    _compact_column(mask, kids)
    _compact_column(mask, fertile)
    _compact_column(mask, persons)
    _compact_column(mask, head)
    return m


@jit
def _compact_column(mask, x):  # pragma: no cover - compiled
    """The rows of ``x`` with ``mask`` to the front, in order (each row copied down, kept or not)."""
    j = 0
    for i in range(len(mask)):
        x[j] = x[i]
        j += mask[i]
    return j


@jit
def spread_live(u, size, live, fill):  # pragma: no cover - compiled
    """In place: the first ``live`` values of ``u`` move, in order, to the ``live`` rows with members (from
    the last one back); rows without members get ``fill``."""
    j = live
    for i in range(len(size) - 1, -1, -1):
        if size[i] > 0:
            j -= 1
            u[i] = u[j]
        else:
            u[i] = fill


@jit
def gather_live(x, size, out):  # pragma: no cover - compiled
    """``x`` of the rows with members, in order, into the front of ``out`` (as long as ``x``)."""
    j = 0
    for i in range(len(size)):
        out[j] = x[i]
        j += size[i] > 0


@jit
def hukou_candidates(region, min_years, need_job, district, urban, hukou, hukou_ag, years_here, employed,
                     local_conversion):  # pragma: no cover - compiled
    """Rows eligible for local urban hukou, for every regional office in one pass: urban residents
    without local hukou (or with agricultural hukou when local conversion is on), resident
    ``min_years[r]``, employed if ``need_job[r]`` (r = ``region[district]``).
    Returns the rows grouped by region, in row order within each, and each region's start (and the end)."""
    n_regions = len(min_years)
    found = np.empty(len(district), np.int64)
    j = 0
    for i in range(len(district)):  # branch-free: the conditions are unpredictable row to row
        d = district[i]
        r = region[d]
        ok = urban[i] & ((hukou[i] != d) | (hukou_ag[i] & local_conversion))
        ok &= (years_here[i] >= min_years[r]) & (employed[i] | (not need_job[r]))
        found[j] = i
        j += ok
    start = np.zeros(n_regions + 1, np.int64)
    for t in range(j):
        start[region[district[found[t]]] + 1] += 1
    for r in range(n_regions):
        start[r + 1] += start[r]
    out = np.empty(j, np.int64)
    fill = start[:n_regions].copy()
    for t in range(j):
        r = region[district[found[t]]]
        out[fill[r]] = found[t]
        fill[r] += 1
    return out, start


@jit
def draw_ages(ages, size, cdf, table, u):  # pragma: no cover - compiled
    """Member ages: slot c < ``size[i]`` of row i gets the first age whose ``cdf[table[i]]`` exceeds the
    next uniform (row-major), the rest are empty (−1): ``rng.choice(cdf.shape[1], p=pmf)``'s inverse-CDF
    draw from the row's own age distribution."""
    n, k = ages.shape
    j = 0
    for i in range(n):
        row = cdf[table[i]]
        for c in range(k):
            if c < size[i]:
                x = u[j]
                j += 1
                below = 0  # searchsorted(row, x, side="right"): row is sorted, so count the entries <= x
                for a in range(len(row)):
                    below += row[a] <= x
                ages[i, c] = below
            else:
                ages[i, c] = -1


@jit
def adultless(ages, adult_age):  # pragma: no cover - compiled
    """Rows without a member aged ``adult_age`` or more, and the number of spare adults (every adult but
    the first of each household)."""
    n, k = ages.shape
    out = np.empty(n, np.int64)
    j = 0
    spare = 0
    for i in range(n):
        seen = 0
        for c in range(k):
            seen += ages[i, c] >= adult_age
        out[j] = i
        j += seen == 0
        spare += max(seen - 1, 0)
    return out[:j], spare


@jit
def swap_in_adults(ages, needy, pick, adult_age):  # pragma: no cover - compiled
    """Swap the first member of each row ``needy[t]`` with spare adult number ``pick[t]`` (spare adults
    counted in row-major order, as :func:`adultless` counts them)."""
    n, k = ages.shape
    order = np.argsort(pick)
    dr = np.empty(len(pick), np.int64)
    dc = np.empty(len(pick), np.int64)
    t = 0
    rank = 0
    for i in range(n):
        if t == len(order):
            break
        seen = 0
        for c in range(k):
            if ages[i, c] >= adult_age:
                seen += 1
                if seen >= 2:
                    while t < len(order) and pick[order[t]] == rank:
                        dr[order[t]] = i
                        dc[order[t]] = c
                        t += 1
                    rank += 1
    for q in range(len(pick)):
        a = ages[needy[q], 0]
        ages[needy[q], 0] = ages[dr[q], dc[q]]
        ages[dr[q], dc[q]] = a


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
def pairwise_sum(a):  # pragma: no cover - compiled
    """``a.sum()`` as numpy computes it for a contiguous float64 vector (pairwise: eight running sums
    in blocks of up to 128), so the result is the same to the last bit."""
    n = len(a)
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
        i = 8
        while i < n - n % 8:
            r0 += a[i]
            r1 += a[i + 1]
            r2 += a[i + 2]
            r3 += a[i + 3]
            r4 += a[i + 4]
            r5 += a[i + 5]
            r6 += a[i + 6]
            r7 += a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return pairwise_sum(a[:half]) + pairwise_sum(a[half:])


@jit
def network_totals(origin, district, persons, present, pop, stock, natives):  # pragma: no cover - compiled
    """One pass over the households: persons per district into ``pop``, the migrant stock (persons by
    [origin, district of residence], natives at home and households from outside left out) into
    ``stock``, each origin's natives wherever they live (``stock``'s row sums, numpy's pairwise sum) into
    ``natives``; ``present[district, origin + 1]`` marks the pairs some household has. Sums run in row
    order; the current district's sums (all, natives at home) stay in registers while consecutive rows
    share a district (the same additions as ``pop[district[i]] += ...``)."""
    n = len(pop)
    present[:] = False
    pop[:] = 0.0
    stock[:] = 0.0
    if len(district):
        d0 = district[0]
        acc = 0.0
        nat = 0.0
        for i in range(len(origin)):
            d = district[i]
            if d != d0:
                pop[d0] = acc
                stock[d0, d0] = nat
                acc = pop[d]
                nat = stock[d, d]
                d0 = d
            p = persons[i]
            acc += p
            o = origin[i]
            present[d, o + 1] = True
            if o == d:
                nat += p
            elif o >= 0:
                stock[o, d] += p
        pop[d0] = acc
        stock[d0, d0] = nat
    for o in range(n):
        natives[o] = pairwise_sum(stock[o])
        stock[o, o] = 0.0


@jit
def destination_log_args(service, pop, housing, jobs, wage, find_rate, uplift, fallback, stock, natives,
                         logs, net, pressure):  # pragma: no cover - compiled
    """Arguments of the destination tables' logarithms: ``logs`` = [service per capita (≥ 1e-6), jobs
    outside farming (≥ 1), expected wage unregistered, registered] per district (the non-farm wage is
    the mean of the industry and service wages), ``net`` = 1000 × migrant stock / natives (for
    ``log1p``), and the housing pressure per district into ``pressure``."""
    n = len(pop)
    for j in range(n):
        logs[0, j] = max(service[j] / max(pop[j], 1.0), 1e-6)
        x = pop[j] / max(housing[j], 1.0) - 0.9
        pressure[j] = (0.0 if x < 0.0 else x) / 0.1  # np.clip(x, 0, None) / 0.1
        logs[1, j] = max(jobs[j, 1] + jobs[j, 2], 1.0)
        nonfarm = (wage[j, 1] + wage[j, 2]) / 2
        p = min(1.0, find_rate[j] * (1 + 0.0))
        logs[2, j] = nonfarm * (p + (1 - p) * fallback)
        p = min(1.0, find_rate[j] * (1 + uplift[j]))
        logs[3, j] = nonfarm * (p + (1 - p) * fallback)
    for o in range(n):
        nat = max(natives[o], 1.0)
        for j in range(n):
            net[o, j] = 1000.0 * stock[o, j] / nat


@jit
def decision_tables(origin, district, persons, head, workers, employed, urban, key, present, pop, stock, natives,
                    region_rows, region_start, region_index, capacity, coef, slot, pairs, p, service, housing, jobs,
                    wage, find_rate, uplift, fallback, logs, net, pressure):  # pragma: no cover - compiled
    """Everything the yearly decision needs before numpy's exp and logarithms, in one call.

    :func:`network_totals`; each row's index into the dense stage-1 table, ``key[i] = 12 · ((n + 1) ·
    district + origin + 1) + class`` (class: 4 · age class of the head (1: 18-34, 2: 60+, else 0) + 2 ·
    jobless + rural); the stage-1 log-odds of the (district, origin) pairs some household has into ``p``
    (:func:`consideration_logits`; ``slot[district, origin + 1]`` = its row, district-major, −1 if none;
    ``pairs[row]`` = the pair's dense index); the arguments of the destination tables' logarithms
    (:func:`destination_log_args`). Regional sums are numpy's (each region's districts in order,
    ``region_rows[region_start[r]:region_start[r + 1]]``). ``coef``: logit of the base rate, the young,
    old, jobless, rural, overload and network coefficients. Returns the number of table rows."""
    network_totals(origin, district, persons, present, pop, stock, natives)
    n = len(pop)
    w = n + 1
    for i in range(len(key)):  # branch-free, so it vectorises
        h = head[i]
        key[i] = (12 * (w * np.int32(district[i]) + np.int32(origin[i]) + 1) + 4 * ((h >= 18) & (h <= 34))
                  + 8 * (h >= 60) + 2 * ((workers[i] > 0) & (not employed[i])) + (not urban[i]))
    overload = np.empty(n)
    share = np.empty(n)
    region_pop = np.empty(len(region_start) - 1)
    vals = np.empty(n)
    for r in range(len(region_pop)):
        c = 0
        for t in range(region_start[r], region_start[r + 1]):
            vals[c] = pop[region_rows[t]]
            c += 1
        region_pop[r] = pairwise_sum(vals[:c])
    for d in range(n):
        r = region_index[d]
        x = region_pop[r] / capacity[r] - 1
        overload[d] = 0.0 if x < 0.0 else x  # np.clip(x, 0, None), NaN kept
        share[d] = pairwise_sum(stock[d]) / max(natives[d], 1.0)  # share of d's natives living elsewhere
    m = 0
    for d in range(n):
        for o in range(w):
            if present[d, o]:
                slot[d, o] = m
                pairs[m] = w * d + o
                m += 1
            else:
                slot[d, o] = -1
    consideration_logits(p, slot, coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], overload, coef[6], share)
    destination_log_args(service, pop, housing, jobs, wage, find_rate, uplift, fallback, stock, natives, logs, net,
                         pressure)
    return m


@jit
def consideration_logits(out, slot, base, young, old, jobless, rural, overload_coef, overload, network_coef,
                         moved_share):  # pragma: no cover - compiled
    """Minus the stage-1 log-odds into ``out[12 · slot[district, origin + 1] + 4 · age class + 2 · jobless +
    rural]`` (origin −1 = outside; age class 0: head 35-59 or under 18, 1: young, 18-34, 2: old, 60+):
    ``base + young·f + old·f + jobless·f + rural·f + overload_coef·overload[district] +
    (network_coef·moved_share[origin])·f`` summed in that order, as the numpy reference broadcasts it.
    Only the (district, origin) pairs some household has get a row."""
    n = len(overload)
    head = np.empty(12)
    for a in range(3):
        for c in range(2):
            for e in range(2):
                x = base + young * (1.0 if a == 1 else 0.0)
                x = x + old * (1.0 if a == 2 else 0.0)
                x = x + jobless * float(c)
                head[4 * a + 2 * c + e] = x + rural * float(e)
    for d in range(n):
        ov = overload_coef * overload[d]
        for o in range(n + 1):
            k = slot[d, o]
            if k < 0:
                continue
            net = network_coef * moved_share[max(o - 1, 0)] * (1.0 if o > 0 else 0.0)
            for c in range(12):
                out[12 * k + c] = -((head[c] + ov) + net)


@jit
def consider(u, p, pairs, dense, key, employed, workers, district, origin, sector, skill, wage, skill_premium,
             fallback, rows, home, network_origin, income, stay, logs, net_log, pressure, dcoef, openness,
             insurance, trend, inc, net, common):  # pragma: no cover - compiled
    """Stage 1 and what stage 2 needs of the households that consider moving, in one call.

    The logistic of ``p`` (exp of minus the log-odds, one row of 12 classes per pair, :func:`decision_tables`)
    goes to the dense table ``dense[12 · pairs[row] + class]``; row i considers moving if ``u[i] <
    dense[key[i]]``. For those rows, in order: ``rows``, ``home`` (district), ``network_origin``
    (origin), ``income`` (``wage[district, sector] × skill_premium[skill]`` if employed with workers, else
    ``fallback`` × the district's non-farm wage; times the earners, workers at least 1) and ``stay[t]`` =
    the stay gain's logarithm arguments (:func:`stay_log_args`). Also the destination tables
    (:func:`destination_terms` from ``logs``, ``net_log``, ``pressure`` and ``dcoef``). Returns the
    number of considering rows."""
    for r in range(len(pairs)):
        for c in range(12):
            dense[12 * pairs[r] + c] = 1.0 / (1.0 + p[12 * r + c])
    destination_terms(logs, net_log, pressure, dcoef[0], dcoef[1], dcoef[2], dcoef[3], openness, dcoef[4], insurance,
                      dcoef[5], trend, dcoef[6], dcoef[7], inc, net, common)
    j = 0
    for i in range(len(u)):
        if u[i] < dense[key[i]]:
            rows[j] = i
            d = district[i]
            home[j] = d
            network_origin[j] = origin[i]
            w = workers[i]
            if employed[i] and w > 0:
                x = wage[d, sector[i]] * skill_premium[skill[i]]
            else:
                x = fallback * ((wage[d, 1] + wage[d, 2]) / 2)
            y = x * max(w, 1)
            income[j] = y
            stay[j, 0] = max(y, 1.0)
            stay[j, 1] = skill_premium[skill[i]] * max(w, 1)
            j += 1
    return j


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
def destination_terms(logs, net_log, pressure, b_service, b_housing, b_size, b_hukou, openness, b_insurance,
                      insurance, b_trend, trend, b_income, b_network, inc, net, common):  # pragma: no cover
    """``inc[registered, j]``, ``net[origin (n = outside: 0), j]`` and ``common[j]`` of the destination
    utility from the logarithms of :func:`destination_log_args` (the numpy reference's terms, in its
    order)."""
    n = len(pressure)
    for j in range(n):
        x = b_service * logs[0, j] - b_housing * pressure[j]
        x = x + b_size * logs[1, j]
        x = x + b_hukou * openness[j]
        x = x + b_insurance * insurance[j]
        if b_trend:
            x += b_trend * trend[j]
        common[j] = x
        inc[0, j] = b_income * logs[2, j]
        inc[1, j] = b_income * logs[3, j]
    for o in range(n):
        for j in range(n):
            net[o, j] = b_network * net_log[o, j]
    net[n, :] = 0.0


@jit
def stay_log_args(rows, income, skill, workers, skill_premium, out):  # pragma: no cover - compiled
    """Arguments of the stay-gain logarithms: ``out[t, 0]`` = income (≥ 1), ``out[t, 1]`` = the expected
    income's skill premium × earners."""
    for t in range(len(rows)):
        i = rows[t]
        out[t, 0] = max(income[t], 1.0)
        out[t, 1] = skill_premium[skill[i]] * max(workers[i], 1)


@jit
def utilities(u, lo, rows, home, network_origin, income, stay_logs, district, platform_u, eco, coverage,
              platform_on, kids, hukou, beta_cost, beta_income, inc, place, net, common, cost, child_term,
              local_gain, local_child_gain):  # pragma: no cover - compiled
    """Destination utilities of rows lo..lo+len(u) of ``rows`` into ``u`` [rows × districts], minus each
    row's maximum. Household keys: ``home`` / ``network_origin`` (−1 → row n of the tables), registered
    on the job platform (``platform_on``, eco-region district, ``platform_u < coverage``), children,
    hukou district; cost scale ``beta_cost / income`` and the gain of keeping the current income when
    staying, ``beta_income × (log income − log expected)`` (``stay_logs``). Same terms and the same order
    of floating-point operations as the numpy reference (staying at ``home`` keeps the current income)."""
    m, n = u.shape
    for r in range(m):
        t = lo + r
        i = rows[t]
        h = home[t] if home[t] >= 0 else n
        o = network_origin[t] if network_origin[t] >= 0 else n
        cv = 1 if platform_on and eco[district[i]] and platform_u[i] < coverage else 0
        cs = beta_cost / max(income[t], 1000.0)
        ch = kids[i]
        for j in range(n):
            x = inc[cv, j] + place[h, j] + net[o, j]
            x += common[j]
            x -= cs * cost[cv, h, j]
            u[r, j] = x
        if ch:
            for j in range(n):
                u[r, j] += child_term[j]
        j = hukou[i]
        if j >= 0:
            u[r, j] += local_gain[j] + (1.0 if ch else 0.0) * local_child_gain[j]
        if h < n:
            u[r, h] += beta_income * (stay_logs[t, 0] - stay_logs[t, 1])
            u[r, h] -= inc[cv, h]
        top = u[r, 0]
        for j in range(1, n):
            top = max(top, u[r, j])
        for j in range(n):
            u[r, j] -= top


@jit
def inverse_cdf(w, draw, out, lo):  # pragma: no cover - compiled
    """Choice per row of exp-utilities ``w``: the number of cumulative sums below ``draw × total``.
    Four rows at a time, so their running sums (each in row order) overlap in the pipeline."""
    m, n = w.shape
    r = 0
    while r < m:
        k = min(4, m - r)
        a0 = a1 = a2 = a3 = 0.0
        if k == 4:
            for j in range(n):
                a0 += w[r, j]
                w[r, j] = a0
                a1 += w[r + 1, j]
                w[r + 1, j] = a1
                a2 += w[r + 2, j]
                w[r + 2, j] = a2
                a3 += w[r + 3, j]
                w[r + 3, j] = a3
        else:
            for j in range(n):
                a0 += w[r, j]
                w[r, j] = a0
        for q in range(k):
            total = a0 if q == 0 else (a1 if q == 1 else (a2 if q == 2 else a3))
            if k < 4 and q > 0:
                total = 0.0
                for j in range(n):
                    total += w[r + q, j]
                    w[r + q, j] = total
            t = draw[r + q] * total
            c = 0
            for j in range(n):
                c += w[r + q, j] < t
            out[lo + r + q] = min(c, n - 1)
        r += k


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


@jit
def take_jobs(hired, district, urban, vac, u, sector, employed):  # pragma: no cover - compiled
    """The hired take jobs in a sector drawn with ``u`` in proportion to their district's vacancies
    ``vac[district, sector]`` (none in farming, sector 0, for urban residents; sectors 1 and 2 half and
    half where the total is 0): the inverse-CDF count of the cumulative shares below ``u``, capped at
    the last sector, with the same sums and divisions as the numpy reference."""
    s = vac.shape[1]
    for t in range(len(hired)):
        i = hired[t]
        d = district[i]
        farm = 0.0 if urban[i] else 1.0
        tot = 0.0
        for c in range(s):  # share.sum(axis=1): in order
            tot += vac[d, c] * farm if c == 0 else vac[d, c]
        cum = 0.0
        pick = 0
        for c in range(s):
            share = (vac[d, c] * farm if c == 0 else vac[d, c]) / tot if tot > 0 else (0.0 if c == 0 else 0.5)
            cum += share
            pick += u[t] > cum
        sector[i] = min(pick, s - 1)
        employed[i] = True


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
    """Persons per district (row order). Rows of one district mostly follow each other: the running sum
    of the current district stays in a register (the same additions as ``out[district[i]] += ...``)."""
    out = np.zeros(n)
    if len(district) == 0:
        return out
    d0 = district[0]
    acc = 0.0
    for i in range(len(district)):
        d = district[i]
        if d != d0:
            out[d0] = acc
            acc = out[d]
            d0 = d
        acc += persons[i]
    out[d0] = acc
    return out


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
