#!/usr/bin/env Rscript
# brms model matched to the project's Stan drug model (src/mimicry/bayes/stan/asymptotic_regression.stan):
#
#   y ~ a + (b - a) * exp(-exp(logc) * t)
#   a     ~ 0 + cell + (1 | gr(pmc, by = mc))  per-cell (mc) participant sd
#   b     ~ 0 + mc
#   logc  ~ 0 + cell [+ (1 | gr(pmc, by = mc)) with --rate-deviations 1]
#   sigma ~ 0 + mc                             per-cell residual sigma, identity link, lb = 0
#   (cell = drug:muscle:condition, mc = muscle:condition, pmc = participant:muscle:condition)
#
# Priors (as in the project): a ~ normal(0, 0.5); b ~ normal(0, 0.2);
# logc ~ normal(log 0.5, 1); sd ~ normal(0, 0.3) (half, lb 0); the rate deviations' sd
# ~ normal(0, 0.5) (half; uncorrelated with the asymptote deviations, as in the project);
# sigma ~ normal(0, 0.3) (lb 0, identity link so it is the prior on sigma itself, like the
# project's vector<lower=0> sigma);
# student: one nu ~ gamma(2, 0.1), lb 1 (brms default bound, = project's real<lower=1> nu).
# Differences left: brms' random effects are non-centred (z * sd); the project samples
# centred asymptotes via least-squares shifts (Student-t) or integrates them out exactly
# (normal); the posterior of every parameter compared is the same.
# From the reference benchmark set the project was checked against; run by
# benchmarks/stan_drug.py --vs-brms.
#
# Timing: brm(empty = TRUE) -> rstan::stan_model (compile)
# -> rstan::sampling (wall) -> rename_pars.
#
# Usage: Rscript brms_matched.R --data cells.csv --family gaussian|student --out-prefix P
#        [--chains 4 --warmup 1000 --iter 1000 --cores 2 --seed 1234 --rate-deviations 0|1]

parse_args <- function(args, defaults) {
  out <- defaults; i <- 1
  while (i <= length(args)) {
    key <- sub("^--", "", args[i])
    if (!(key %in% names(defaults))) stop("unknown argument: ", args[i])
    out[[key]] <- args[i + 1]; i <- i + 2
  }
  out
}
opt <- parse_args(commandArgs(trailingOnly = TRUE), list(
  data = "cells.csv", family = "gaussian", chains = "4", warmup = "1000", iter = "1000",
  cores = "2", seed = "1234", "out-prefix" = "brms_matched", "code-only" = "0", "rate-deviations" = "0"))
chains <- as.integer(opt$chains); warmup <- as.integer(opt$warmup)
iter <- as.integer(opt$iter); cores <- as.integer(opt$cores); seed <- as.integer(opt$seed)
out_prefix <- opt[["out-prefix"]]
rate_deviations <- opt[["rate-deviations"]] == "1"

suppressPackageStartupMessages({ library(brms); library(rstan); library(posterior) })
options(mc.cores = cores)
rstan_options(auto_write = FALSE)
if (!file.exists(rstan_options("boost_lib")) && file.exists("/usr/include/boost/version.hpp")) {
  rstan_options(boost_lib = "/usr/include")
  cat("note: using rstan_options(boost_lib = '/usr/include')\n")
}
cat("versions: R", paste(R.version$major, R.version$minor, sep = "."), "brms",
    as.character(packageVersion("brms")), "rstan", as.character(packageVersion("rstan")),
    "stan", rstan::stan_version(), "\n")

DRUGS <- c("placebo", "naltrexone", "amisulpride")
MUSCLES <- c("ZM", "CS"); CONDITIONS <- c("AngryToHappy", "HappyToAngry")
d <- read.csv(opt$data, stringsAsFactors = FALSE)
d$drug <- factor(d$drug, levels = DRUGS)
d$muscle <- factor(d$muscle, levels = MUSCLES)
d$condition <- factor(d$condition, levels = CONDITIONS)
d$cell <- interaction(d$drug, d$muscle, d$condition, sep = "_", lex.order = TRUE)
d$mc <- interaction(d$muscle, d$condition, sep = "_", lex.order = TRUE)
d$pmc <- factor(paste(d$participant, d$muscle, d$condition, sep = "_"))
cat(sprintf("data: %s, %d rows, %d participants, %d cells, %d pmc\n", opt$data, nrow(d),
            length(unique(d$participant)), nlevels(d$cell), nlevels(d$pmc)))

logc_formula <- if (rate_deviations) logc ~ 0 + cell + (1 | gr(pmc, by = mc)) else logc ~ 0 + cell
form <- bf(y ~ a + (b - a) * exp(-exp(logc) * t),
           a ~ 0 + cell + (1 | gr(pmc, by = mc)),
           b ~ 0 + mc,
           logc_formula,
           sigma ~ 0 + mc,
           nl = TRUE)
fam <- brmsfamily(if (opt$family == "gaussian") "gaussian" else "student", link_sigma = "identity")
priors <- c(prior(normal(0, 0.5), nlpar = "a"),
            prior(normal(0, 0.2), nlpar = "b"),
            prior(normal(-0.6931471805599453, 1), nlpar = "logc"),
            prior(normal(0, 0.3), class = "sd", nlpar = "a"),
            prior(normal(0, 0.3), class = "b", dpar = "sigma", lb = 0))
if (rate_deviations) priors <- c(priors, prior(normal(0, 0.5), class = "sd", nlpar = "logc"))
if (opt$family == "student") priors <- c(priors, prior(gamma(2, 0.1), class = "nu"))

t0 <- proc.time()[["elapsed"]]
fit0 <- brm(form, data = d, family = fam, prior = priors, empty = TRUE, backend = "rstan")
code <- stancode(fit0); sdata <- standata(fit0)
t_prep <- proc.time()[["elapsed"]] - t0
writeLines(code, paste0(out_prefix, "_model.stan"))
print(prior_summary(fit0))
if (opt[["code-only"]] == "1") quit(save = "no")

t0 <- proc.time()[["elapsed"]]
sm <- rstan::stan_model(model_code = code, model_name = "matched")
t_compile <- proc.time()[["elapsed"]] - t0
cat(sprintf("compile: %.1f s\n", t_compile))
load_before <- readLines("/proc/loadavg")
pt0 <- proc.time()
t0 <- proc.time()[["elapsed"]]
sf <- rstan::sampling(sm, data = sdata, chains = chains, iter = warmup + iter, warmup = warmup,
                      cores = cores, seed = seed, refresh = 0)
t_sampling <- proc.time()[["elapsed"]] - t0
cat(sprintf("sampling: %.1f s (wall, %d chains on %d cores)\n", t_sampling, chains, cores))
pt1 <- proc.time() - pt0
cat("proc.time during sampling:", paste(names(pt1), round(pt1, 1), collapse = ", "), "\n")
cat("loadavg before:", load_before, "| after:", readLines("/proc/loadavg"), "\n")
fit0$fit <- sf
fit <- rename_pars(fit0)

et <- rstan::get_elapsed_time(sf)
divergences <- rstan::get_num_divergent(sf)
treedepth_hits <- rstan::get_num_max_treedepth(sf)
bfmi <- rstan::get_bfmi(sf)
sp <- rstan::get_sampler_params(sf, inc_warmup = FALSE)
mean_leapfrog <- mean(sapply(sp, function(x) mean(x[, "n_leapfrog__"])))
stepsizes <- sapply(sp, function(x) x[1, "stepsize__"])

draws <- as_draws_df(fit)
allv <- setdiff(variables(draws), c("lp__", "lprior"))
rhat_all <- max(sapply(allv, function(v) rhat(extract_variable_matrix(draws, v))), na.rm = TRUE)

# key quantities: a, c = exp(logc) per drug x mc, b per mc, contrasts of a and c vs placebo
mcs <- levels(d$mc)
keyq <- list(); rows <- list()
getm <- function(v) extract_variable_matrix(draws, v)
for (m in mcs) {
  for (g in DRUGS) {
    cellname <- paste(g, m, sep = "_")
    keyq[[paste0("a|", g, "|", m)]] <- getm(paste0("b_a_cell", cellname))
    keyq[[paste0("log_c|", g, "|", m)]] <- getm(paste0("b_logc_cell", cellname))
    keyq[[paste0("c|", g, "|", m)]] <- exp(getm(paste0("b_logc_cell", cellname)))
  }
  for (g in DRUGS[-1]) {
    keyq[[paste0("contrast_a|", g, " - placebo|", m)]] <- keyq[[paste0("a|", g, "|", m)]] - keyq[[paste0("a|placebo|", m)]]
    keyq[[paste0("contrast_c|", g, " - placebo|", m)]] <- keyq[[paste0("c|", g, "|", m)]] - keyq[[paste0("c|placebo|", m)]]
  }
  keyq[[paste0("b||", m)]] <- getm(paste0("b_b_mc", m))
  keyq[[paste0("sigma||", m)]] <- getm(paste0("b_sigma_mc", m))
  keyq[[paste0("participant_sd||", m)]] <- getm(paste0("sd_pmc__a_Intercept:mc", m))
}
if (opt$family == "student") keyq[["nu||"]] <- getm("nu")
for (k in names(keyq)) {
  x <- keyq[[k]]; p <- strsplit(k, "|", fixed = TRUE)[[1]]
  rows[[k]] <- data.frame(param = p[1], group = if (length(p) > 1) p[2] else "",
                          cell = if (length(p) > 2) p[3] else "",
                          mean = mean(x), sd = sd(as.vector(x)),
                          q2.5 = unname(quantile(x, 0.025)), q97.5 = unname(quantile(x, 0.975)),
                          mcse_mean = mcse_mean(x), ess_bulk = ess_bulk(x), ess_tail = ess_tail(x),
                          rhat = rhat(x))
}
summ <- do.call(rbind, rows); rownames(summ) <- NULL
write.csv(summ, paste0(out_prefix, "_summary.csv"), row.names = FALSE)
keyset <- summ$param %in% c("a", "b", "c", "contrast_a", "contrast_c")
abc <- summ$param %in% c("a", "b", "c")
res <- data.frame(
  fit = paste0("brms_matched_", opt$family), prep_s = t_prep, compile_s = t_compile, sampling_s = t_sampling,
  sum_chain_s = sum(rowSums(et)), max_chain_s = max(rowSums(et)),
  min_ess_bulk_abc_contrasts = min(summ$ess_bulk[keyset]), min_ess_tail_abc_contrasts = min(summ$ess_tail[keyset]),
  min_ess_bulk_abc = min(summ$ess_bulk[abc]), min_ess_tail_abc = min(summ$ess_tail[abc]),
  ess_bulk_per_s = min(summ$ess_bulk[keyset]) / t_sampling,
  divergences = divergences, max_treedepth_hits = treedepth_hits, min_bfmi = min(bfmi),
  max_rhat_key = max(summ$rhat[keyset]), max_rhat_all = rhat_all,
  mean_leapfrog = mean_leapfrog, stepsizes = paste(sprintf("%.4f", stepsizes), collapse = " "))
write.csv(res, paste0(out_prefix, "_metrics.csv"), row.names = FALSE)
cat("per-chain warmup/sample (s):\n"); print(round(et, 1))
print(t(res))
print(summ, digits = 4)
