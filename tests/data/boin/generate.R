# Reference values of the BOIN design (R package BOIN 2.7.2) for
# tests/engine/boin_test.cc: boundary tables, next-dose decisions and MTD
# selections, written to reference.json beside this file.
#
# Regenerate (from the repository root; needs only base R, Debian's
# r-base-core; these values were made with R 4.2.2):
#
#   Rscript tests/data/boin/generate.R > tests/data/boin/reference.json
#
# The BOIN package itself is not needed: the functions below are its
# formulas transcribed from the package's source, with R's own pbeta():
#   boin_boundary  get.boundary(): floor(lambda_e n) to escalate; the
#                  smallest y with y > lambda_d n to de-escalate (a product
#                  within 1e-12 of a whole number counts as that number);
#                  elimination from n = 3 at the smallest y >= 1 with
#                  1 - pbeta(target, y + 1, n - y + 1) > cutoff.eli; the
#                  de-escalation boundary capped at the elimination one.
#   boin_next      one step of the single-agent trial in get.oc(): eliminate,
#                  stop with no MTD when dose 1 is eliminated, stop and
#                  select when n >= n.earlystop and the dose would not move,
#                  else escalate (unless the highest dose left), de-escalate
#                  (unless the lowest), or stay. Which doses are eliminated
#                  is taken from the counts, as select.mtd() takes it.
#   boin_select    select.mtd(): pava() as the package writes it, estimates
#                  (y + 0.05) / (n + 0.1) weighted by 1 / variance over the
#                  treated doses below the first eliminated one, the tie-break
#                  + (1:k) * 1e-10, the first dose closest to the target.
# Cases are the doses BOIN can reach: the current dose is treated and is
# not above the lowest eliminated dose. Doses are 1-based here, as in R.

pava <- function(x, wt = rep(1, length(x))) {
  n <- length(x)
  if (n <= 1) return(x)
  lvlsets <- (1:n)
  repeat {
    viol <- (as.vector(diff(x)) < 0)
    if (!(any(viol))) break
    i <- min((1:(n - 1))[viol])
    lvl1 <- lvlsets[i]
    lvl2 <- lvlsets[i + 1]
    ilvl <- (lvlsets == lvl1 | lvlsets == lvl2)
    x[ilvl] <- sum(x[ilvl] * wt[ilvl]) / sum(wt[ilvl])
    lvlsets[ilvl] <- lvl1
  }
  x
}

lambdas <- function(target, p.saf, p.tox) {
  list(
    e = log((1 - p.saf) / (1 - target)) / log(target * (1 - p.saf) / (p.saf * (1 - target))),
    d = log((1 - target) / (1 - p.tox)) / log(p.tox * (1 - target) / (target * (1 - p.tox))))
}

boin_boundary <- function(target, npts, p.saf = 0.6 * target, p.tox = 1.4 * target,
                          cutoff.eli = 0.95) {
  stopifnot(target >= 0.05, target <= 0.6, (target - p.saf) >= 0.1 * target,
            (p.tox - target) >= 0.1 * target)
  l <- lambdas(target, p.saf, p.tox)
  tol <- 1e-12
  b.e <- b.d <- elim <- NULL
  for (n in 1:npts) {
    b.e <- c(b.e, floor(l$e * n))
    b.d <- c(b.d, ifelse(abs(round(l$d * n) - l$d * n) < tol, round(l$d * n) + 1,
                         ceiling(l$d * n)))
    e <- NA
    if (n >= 3) {
      for (ntox in 1:n) {
        if (1 - pbeta(target, ntox + 1, n - ntox + 1) > cutoff.eli) { e <- ntox; break }
      }
    }
    elim <- c(elim, e)
  }
  for (i in seq_along(b.d)) if (!is.na(elim[i]) && b.d[i] > elim[i]) b.d[i] <- elim[i]
  list(lambda_e = l$e, lambda_d = l$d, n = 1:npts, b.e = b.e, b.d = b.d, elim = elim)
}

eliminated_from_counts <- function(target, n, y, cutoff.eli = 0.95) {
  elimi <- rep(0, length(n))
  for (i in seq_along(n)) {
    if (n[i] >= 3 && 1 - pbeta(target, y[i] + 1, n[i] - y[i] + 1) > cutoff.eli) {
      elimi[i:length(n)] <- 1
      break
    }
  }
  elimi
}

boin_next <- function(target, n, y, d, n.earlystop = 100, p.tox = 1.4 * target,
                      cutoff.eli = 0.95) {
  ndose <- length(n)
  elimi <- eliminated_from_counts(target, n, y, cutoff.eli)
  stopifnot(n[d] >= 1, elimi[1] == 1 || all(elimi[seq_len(d - 1)] == 0))
  b <- boin_boundary(target, n[d], p.tox = p.tox, cutoff.eli = cutoff.eli)
  b.e <- b$b.e; b.d <- b$b.d
  out <- function(decision, next_dose)
    list(decision = decision, next_dose = next_dose, eliminated = which(elimi == 1))
  if (elimi[1] == 1) return(out("STOP_NO_MTD", NA))
  if (n[d] >= n.earlystop &&
      ((y[d] > b.e[n[d]] && y[d] < b.d[n[d]]) || (d == 1 && y[d] >= b.d[n[d]]) ||
       ((d == ndose || elimi[d + 1] == 1) && y[d] <= b.e[n[d]])))
    return(out("STOP_SELECT_MTD", NA))
  if (y[d] <= b.e[n[d]] && d != ndose) {
    if (elimi[d + 1] == 0) return(out("ESCALATE", d + 1))
    return(out("STAY", d))
  } else if (y[d] >= b.d[n[d]] && d != 1) {
    return(out("DE_ESCALATE", d - 1))
  }
  out("STAY", d)
}

boin_select <- function(target, npts, ntox, cutoff.eli = 0.95) {
  y <- ntox; n <- npts; ndose <- length(n)
  elimi <- eliminated_from_counts(target, n, y, cutoff.eli)
  estimates <- rep(NA, ndose)
  if (elimi[1] == 1 || sum(n[elimi == 0]) == 0) return(list(mtd = NA, estimates = estimates))
  adm.set <- (n != 0) & (elimi == 0)
  adm.index <- which(adm.set == TRUE)
  y.adm <- y[adm.set]; n.adm <- n[adm.set]
  phat <- (y.adm + 0.05) / (n.adm + 0.1)
  phat.var <- (y.adm + 0.05) * (n.adm - y.adm + 0.05) / ((n.adm + 0.1)^2 * (n.adm + 0.1 + 1))
  phat <- pava(phat, wt = 1 / phat.var)
  estimates[adm.index] <- phat
  phat <- phat + (1:length(phat)) * 1e-10
  selectd <- sort(abs(phat - target), index.return = TRUE)$ix[1]
  list(mtd = adm.index[selectd], estimates = estimates)
}

## JSON, by hand: base R has no writer. Numbers round-trip (17 digits).
num <- function(x) ifelse(is.na(x), "null", sprintf("%.17g", x))
int <- function(x) ifelse(is.na(x), "null", sprintf("%d", as.integer(x)))
arr <- function(items) paste0("[", paste(items, collapse = ", "), "]")
obj <- function(...) {
  fields <- list(...)
  paste0("{", paste(sprintf("\"%s\": %s", names(fields), unlist(fields)), collapse = ", "), "}")
}

## A phi2 (found with uniroot) that makes lambda_d = 1/3 to the last bit
## at target 0.25: lambda_d * 3 is exactly 1 and lambda_d * 12 exactly 4,
## where "de-escalate when y/n > lambda_d" differs from a ceiling.
kWholeLambdaD <- 0.42430609056700153

designs <- list(
  list(target = 0.20), list(target = 0.25), list(target = 0.30), list(target = 0.33),
  list(target = 0.25, p.saf = 0.15, p.tox = 0.35),
  list(target = 0.25, p.saf = 0.15, p.tox = kWholeLambdaD))
design_json <- sapply(designs, function(p) {
  p.saf <- if (is.null(p$p.saf)) 0.6 * p$target else p$p.saf
  p.tox <- if (is.null(p$p.tox)) 1.4 * p$target else p$p.tox
  b <- boin_boundary(p$target, 30, p.saf, p.tox)
  rows <- sapply(b$n, function(i)
    obj(n = int(i), escalate_max = int(b$b.e[i]), deescalate_min = int(b$b.d[i]),
        eliminate_min = int(b$elim[i])))
  obj(target = num(p$target), phi1 = if (is.null(p$p.saf)) "null" else num(p.saf),
      phi2 = if (is.null(p$p.tox)) "null" else num(p.tox),
      lambda_e = num(b$lambda_e), lambda_d = num(b$lambda_d),
      boundaries = paste0("[\n      ", paste(rows, collapse = ",\n      "), "]"))
})

next_cases <- list()
add_next <- function(target, n, y, d, n.earlystop = 100, p.tox = NULL, note = "") {
  r <- boin_next(target, n, y, d, n.earlystop,
                 p.tox = if (is.null(p.tox)) 1.4 * target else p.tox)
  next_cases[[length(next_cases) + 1]] <<- obj(
    note = sprintf("\"%s\"", note), target = num(target),
    phi2 = if (is.null(p.tox)) "null" else num(p.tox), n_earlystop = int(n.earlystop),
    n = arr(int(n)), y = arr(int(y)), current = int(d), decision = sprintf("\"%s\"", r$decision),
    next_dose = int(r$next_dose), eliminated = arr(int(r$eliminated)))
}
mtd_cases <- list()
add_mtd <- function(target, n, y, note = "") {
  r <- boin_select(target, n, y)
  mtd_cases[[length(mtd_cases) + 1]] <<- obj(
    note = sprintf("\"%s\"", note), target = num(target), n = arr(int(n)), y = arr(int(y)),
    mtd = int(r$mtd), estimates = arr(num(r$estimates)))
}

## The contract's examples (SAFETY.md 4.2).
add_next(0.30, c(3, 0, 0), c(0, 0, 0), 1, note = "contract")
add_next(0.30, c(3, 3, 0), c(0, 2, 0), 2, note = "contract")
add_next(0.30, c(3, 3, 0), c(0, 3, 0), 2, note = "contract")
add_next(0.30, c(6, 0, 0), c(4, 0, 0), 1, note = "contract")
add_mtd(0.30, c(3, 3, 15, 9, 0), c(0, 0, 4, 4, 0), note = "contract")

## Edge cases, for each target: every boundary exactly and one past it.
for (target in c(0.20, 0.25, 0.30, 0.33)) {
  for (n in c(3, 6, 9, 12)) {
    b <- boin_boundary(target, n)
    ys <- unique(c(b$b.e[n], b$b.e[n] + 1, b$b.d[n] - 1, b$b.d[n]))
    if (!is.na(b$elim[n])) ys <- unique(c(ys, b$elim[n] - 1, b$elim[n]))
    for (y in ys[ys >= 0 & ys <= n])
      add_next(target, c(3, n, 0), c(0, y, 0), 2, note = "boundary")
  }
}
add_next(0.25, c(3, 0, 0), c(3, 0, 0), 1, note = "lowest dose eliminated")
add_next(0.30, c(9, 3, 0), c(5, 0, 0), 2, note = "lowest dose eliminated, not current")
add_next(0.30, c(3, 6, 0), c(0, 5, 0), 2, note = "current eliminated")
add_next(0.30, c(3, 3, 3), c(0, 0, 0), 3, note = "highest dose, escalation blocked")
add_next(0.20, c(3, 3, 6), c(0, 0, 4), 2, note = "next dose eliminated, escalation blocked")
add_next(0.30, c(3, 12, 0), c(0, 3, 0), 2, n.earlystop = 12, note = "n_earlystop, stay")
add_next(0.30, c(3, 12, 0), c(0, 1, 0), 2, n.earlystop = 12, note = "n_earlystop, escalate")
add_next(0.30, c(3, 12, 0), c(0, 5, 0), 2, n.earlystop = 12,
         note = "n_earlystop, de-escalate")
add_next(0.30, c(12, 0, 0), c(5, 0, 0), 1, n.earlystop = 12,
         note = "n_earlystop, de-escalation blocked at dose 1")
add_next(0.30, c(3, 3, 12), c(0, 0, 1), 3, n.earlystop = 12,
         note = "n_earlystop, escalation blocked at the highest dose")
add_next(0.20, c(3, 9, 6), c(0, 1, 4), 2, n.earlystop = 9,
         note = "n_earlystop, escalation blocked by elimination")
add_next(0.30, c(9, 0, 0), c(7, 0, 0), 1, n.earlystop = 9,
         note = "n_earlystop and the lowest dose eliminated")
add_next(0.33, c(3, 0, 3, 0), c(0, 0, 1, 0), 3, note = "untreated doses")
add_next(0.25, c(1, 0, 0), c(1, 0, 0), 1, note = "one patient")
add_next(0.25, c(3, 3, 0), c(0, 1, 0), 2, p.tox = kWholeLambdaD,
         note = "y/n exactly lambda_d: stay")
add_next(0.25, c(3, 12, 0), c(0, 4, 0), 2, p.tox = kWholeLambdaD,
         note = "y/n exactly lambda_d: stay")
add_next(0.25, c(3, 12, 0), c(0, 5, 0), 2, p.tox = kWholeLambdaD,
         note = "y/n above lambda_d: de-escalate")

add_mtd(0.30, c(6, 3, 0), c(4, 0, 0), note = "lowest dose eliminated")
add_mtd(0.30, c(0, 0, 0), c(0, 0, 0), note = "nothing treated")
add_mtd(0.30, c(0, 3, 0), c(0, 3, 0), note = "only treated dose eliminated")
add_mtd(0.30, c(3, 0, 6, 0), c(0, 0, 1, 0), note = "untreated doses between")
add_mtd(0.30, c(3, 3, 3), c(1, 0, 0), note = "pooled, below target: the highest")
add_mtd(0.20, c(6, 6, 6), c(3, 2, 0), note = "pooled, above target: the lowest")
add_mtd(0.25, c(3, 6, 9, 3), c(0, 1, 3, 3), note = "eliminated above")
add_mtd(0.33, c(1, 1), c(0, 1), note = "one patient each")

## Seeded random trials: 3 to 5 doses, increasing true rates, current dose
## where BOIN could be.
set.seed(20240601)
for (k in 1:60) {
  target <- sample(c(0.20, 0.25, 0.30, 0.33), 1)
  ndose <- sample(3:5, 1)
  p <- sort(runif(ndose, 0.02, 0.7))
  n <- sample(c(0, 0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 12, 15, 18), ndose, replace = TRUE)
  y <- rbinom(ndose, n, p)
  add_mtd(target, n, y, note = "random")
  elimi <- eliminated_from_counts(target, n, y)
  top <- if (any(elimi == 1)) which(elimi == 1)[1] else ndose
  candidates <- which(n[1:top] >= 1)
  if (length(candidates) == 0) next
  d <- candidates[sample.int(length(candidates), 1)]
  add_next(target, n, y, d, n.earlystop = sample(c(100, 100, 9, 12), 1), note = "random")
}

cat("{\n",
    sprintf("  \"generator\": \"tests/data/boin/generate.R (BOIN 2.7.2 formulas)\",\n"),
    sprintf("  \"r_version\": \"%s\",\n", R.version.string),
    "  \"designs\": [\n    ", paste(design_json, collapse = ",\n    "), "],\n",
    "  \"next_dose\": [\n    ", paste(unlist(next_cases), collapse = ",\n    "), "],\n",
    "  \"mtd\": [\n    ", paste(unlist(mtd_cases), collapse = ",\n    "), "]\n",
    "}\n", sep = "")
