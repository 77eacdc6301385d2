#!/usr/bin/env Rscript
# lme4 model matched to the project's default frequentist model
# (src/mimicry/stats/frequentist.py, random_effects "condition_shape"), fitted by maximum
# likelihood for every muscle:
#
#   full:                      y ~ group * condition * bin
#   without_drug_x_condition:  y ~ group * bin + condition * bin
#   without_drug:              y ~ condition * bin
#   without_condition:         y ~ group * bin
#   each + (0 + condition:shape | participant) + (1 | participant:condition),
#   REML = FALSE
#
# with bin a factor, treatment coding (the first listed group and condition and the
# first bin are the baselines) and shape = 1 - exp(-t / shape-time-constant). lme4's
# default control (nloptwrap's BOBYQA and its convergence checks). Run by
# benchmarks/mixed_models.py, which writes the cells table and reads the output.
#
# Timing: elapsed seconds around each lmer call only (not R's start-up or reading);
# with --repeats N, the fastest of N calls.
#
# Usage: Rscript lme4_matched.R --data cells.csv --groups placebo,naltrexone,amisulpride
#        --conditions AngryToHappy,HappyToAngry --out-prefix P
#        [--shape-time-constant 2 --repeats 1]
# cells.csv: participant, group, muscle, condition, bin, t, y.
# Writes P_fits.csv (muscle, model, seconds, loglik, singular, messages) and
# P_fixed_effects.csv (muscle, model, term, estimate).

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
  data = "cells.csv", groups = "", conditions = "", "out-prefix" = "lme4_matched",
  "shape-time-constant" = "2", repeats = "1"))
groups <- strsplit(opt$groups, ",", fixed = TRUE)[[1]]
conditions <- strsplit(opt$conditions, ",", fixed = TRUE)[[1]]
out_prefix <- opt[["out-prefix"]]
repeats <- as.integer(opt$repeats)

suppressPackageStartupMessages(library(lme4))
cat("versions: R", paste(R.version$major, R.version$minor, sep = "."), "lme4",
    as.character(packageVersion("lme4")), "\n")

d <- read.csv(opt$data, stringsAsFactors = FALSE)
d$group <- factor(d$group, levels = groups)
d$condition <- factor(d$condition, levels = conditions)
d$bin <- factor(d$bin, levels = sort(unique(d$bin)))
d$participant <- factor(d$participant)
d$shape <- 1 - exp(-d$t / as.numeric(opt[["shape-time-constant"]]))

random <- "(0 + condition:shape | participant) + (1 | participant:condition)"
fixed <- c(full = "group * condition * bin",
           without_drug_x_condition = "group * bin + condition * bin",
           without_drug = "condition * bin",
           without_condition = "group * bin")

fits <- list(); fixed_effects <- list()
for (muscle in sort(unique(d$muscle))) {
  data <- d[d$muscle == muscle, ]
  for (model in names(fixed)) {
    form <- as.formula(paste("y ~", fixed[[model]], "+", random))
    messages <- character(); seconds <- Inf
    for (repeat_index in seq_len(repeats)) {
      started <- proc.time()[["elapsed"]]
      fit <- withCallingHandlers(
        lmer(form, data = data, REML = FALSE),
        warning = function(w) {
          messages <<- c(messages, conditionMessage(w)); invokeRestart("muffleWarning")
        },
        message = function(m) {
          messages <<- c(messages, trimws(conditionMessage(m)))
          invokeRestart("muffleMessage")
        })
      seconds <- min(seconds, proc.time()[["elapsed"]] - started)
    }
    messages <- c(messages, fit@optinfo$conv$lme4$messages)
    fits[[length(fits) + 1]] <- data.frame(
      muscle = muscle, model = model, seconds = seconds,
      loglik = as.numeric(logLik(fit)), singular = isSingular(fit),
      messages = paste(unique(messages), collapse = "; "))
    estimates <- fixef(fit)
    fixed_effects[[length(fixed_effects) + 1]] <- data.frame(
      muscle = muscle, model = model, term = names(estimates),
      estimate = unname(estimates))
    cat(sprintf("%s %s: %.3f s, loglik %.10f\n", muscle, model, seconds, logLik(fit)))
  }
}
write.csv(do.call(rbind, fits), paste0(out_prefix, "_fits.csv"), row.names = FALSE)
write.csv(do.call(rbind, fixed_effects), paste0(out_prefix, "_fixed_effects.csv"),
          row.names = FALSE)
