// Asymptotic regression of facial-EMG time courses (Korb et al. 2023 reanalysis).
//
//   mu(t) = a + (b - a) * exp(-c * t),  c = exp(log_c)
//
// per muscle x condition cell: a is the asymptote, b the value at t = 0, c the rate.
// Outcome: mean over trials of log EMG relative to baseline (log-ratio scale).
//
// One program serves both models. The drug model has a and log_c per group x cell (a
// "curve") and b per cell; the pooled model is the same program with every participant
// in one group. Each participant x cell "series" has its own asymptote, normal around
// its curve's a with a per-cell sd (muscles and conditions differ in how much
// participants vary, and 40+ participants per cell identify each sd well).
//
// Parameterisation, chosen for sampling speed (benchmarks/stan_drug.py):
// - exp(-c t) takes only bins x curves distinct values: one small matrix per
//   evaluation. Each curve's series are one contiguous block of columns of y.
// - With ~12 bins per series the data pin each series asymptote down (posterior sd
//   ~0.015) much more tightly than the participant sd spreads them (~0.06): the
//   regime where the centred form (asymptote ~ normal(a, sd)) mixes well and the
//   non-centred a + sd * z would couple z to sd and a instead.
// - Given b and c, the asymptote a series' data imply is a least-squares fit that moves
//   with c. Sampled directly, the asymptotes and c form a ridge that forces long
//   trajectories (tree depth 5, a third of the effective sample size). So each series
//   asymptote is its least-squares value plus a sampled shift, and each curve's a is
//   the mean least-squares value of its series plus a sampled shift; the shifts hardly
//   correlate with c. Given (b, c) the map from shifts to asymptotes is a translation,
//   so its Jacobian is 1 and the priors below apply to a and the asymptotes as stated.
// - The normal likelihood needs no per-observation term: a series' residual sum of
//   squares is its least-squares minimum plus shift^2 * sum((1 - exp(-c t))^2).
functions {
  // sum_j y[j, s] * decay[j, k] for every series s of every curve k.
  vector series_decay_products(matrix decay, data matrix y,
                               data array[] int curve_n_series) {
    vector[cols(y)] products;
    int start = 1;
    for (k in 1 : num_elements(curve_n_series)) {
      int end = start + curve_n_series[k] - 1;
      products[start : end] = y[ : , start : end]' * decay[ : , k];
      start = end + 1;
    }
    return products;
  }

  // Least-squares asymptote of every series given b and rise = 1 - exp(-c t) (bins x
  // curves): minimises sum_j (y_j - a * rise_j - b * (1 - rise_j))^2.
  vector least_squares_asymptote(vector b, matrix rise, data vector y_sum,
                                 vector y_decay, data array[] int series_curve,
                                 data array[] int series_cell) {
    vector[cols(rise)] decay_rise = columns_dot_product(1 - rise, rise)';
    vector[cols(rise)] rise_square = columns_dot_self(rise)';
    return (y_sum - y_decay - b[series_cell] .* decay_rise[series_curve])
           ./ rise_square[series_curve];
  }

  // Each curve's asymptote: the mean least-squares asymptote of its series plus
  // a_shift. Curves are numbered column-major over groups x cells, like to_vector(a).
  matrix curve_asymptote(matrix a_shift, vector fitted,
                         data array[] int curve_n_series) {
    vector[num_elements(curve_n_series)] curve_fitted;
    int start = 1;
    for (k in 1 : num_elements(curve_n_series)) {
      int end = start + curve_n_series[k] - 1;
      curve_fitted[k] = mean(fitted[start : end]);
      start = end + 1;
    }
    return a_shift + to_matrix(curve_fitted, rows(a_shift), cols(a_shift));
  }

  // Expected response (bins x series) of the series of one curve.
  matrix curve_mean(vector asymptote, real b, vector decay) {
    return rep_matrix(asymptote', rows(decay)) + decay * (b - asymptote)';
  }
}
data {
  int<lower=1> n_obs;
  int<lower=1> n_series; // participant x cell series, each with all n_bins bins
  int<lower=1> n_cells; // muscle x condition
  int<lower=1> n_groups; // 1 for the pooled model
  int<lower=1> n_bins;
  vector<lower=0>[n_bins] t; // bin centre (s)
  // Series sorted by cell, then group: each group x cell curve is a contiguous block.
  array[n_series] int<lower=1, upper=n_cells> series_cell;
  array[n_series] int<lower=1, upper=n_groups> series_group;
  vector[n_obs] y; // series after series, bins in time order within each
  int<lower=1, upper=n_groups> reference_group;
  int<lower=0, upper=1> student_t; // 1: Student-t likelihood, 0: normal
  int<lower=0, upper=1> prior_only; // 1: ignore y, draw from the prior
}
transformed data {
  int n_curves = n_groups * n_cells; // curve k = group + n_groups * (cell - 1)
  array[n_series] int series_curve;
  array[n_curves] int curve_n_series = rep_array(0, n_curves);
  array[n_curves] int curve_cell;
  for (s in 1 : n_series) {
    series_curve[s] = series_group[s] + n_groups * (series_cell[s] - 1);
    curve_n_series[series_curve[s]] += 1;
    curve_cell[series_curve[s]] = series_cell[s];
  }
  matrix[n_bins, n_series] y_matrix = to_matrix(y, n_bins, n_series);
  vector[n_series] y_sum = (rep_row_vector(1, n_bins) * y_matrix)';
  vector[n_series] y_square_sum = columns_dot_self(y_matrix)';
  array[n_groups - 1] int contrast_group;
  {
    int k = 1;
    for (g in 1 : n_groups) {
      if (g != reference_group) {
        contrast_group[k] = g;
        k += 1;
      }
    }
  }
}
parameters {
  // a minus its curve's mean least-squares asymptote; a itself in prior-only mode.
  // Its prior is stated on a in the model block.
  matrix[n_groups, n_cells] a_shift;
  vector[n_cells] b;
  matrix[n_groups, n_cells] log_c;
  vector<lower=0>[n_cells] participant_sd;
  vector<lower=0>[n_cells] sigma;
  // Degrees of freedom shared by all cells: tail weight is a property of the
  // recording and outlier process, and one nu is far better identified than twelve.
  array[student_t] real<lower=1> nu;
  // Series asymptote minus its least-squares value; prior stated on the asymptote.
  // Without data there is nothing to centre on: prior-only draws of the asymptotes
  // come from the hierarchical prior in generated quantities instead.
  vector[prior_only ? 0 : n_series] participant_a_shift;
}
model {
  // 1 - exp(-c t), accurate also where c t is tiny.
  matrix[n_bins, n_curves] rise = -expm1(-t * exp(to_vector(log_c))');
  // Unused in prior-only mode, where they cost one cheap evaluation.
  vector[n_series] y_decay = series_decay_products(1 - rise, y_matrix, curve_n_series);
  vector[n_series] fitted = least_squares_asymptote(b, rise, y_sum, y_decay,
                                                    series_curve, series_cell);
  matrix[n_groups, n_cells] a = prior_only ? a_shift
                                : curve_asymptote(a_shift, fitted, curve_n_series);

  // Log-ratio scale: a = +-1 would be a 2.7-fold change of EMG amplitude, far beyond
  // mimicry (~10-20%), so normal(0, 0.5) is wide yet excludes absurd asymptotes.
  to_vector(a) ~ normal(0, 0.5);
  // Baseline correction puts the response at t = 0 near zero.
  b ~ normal(0, 0.2);
  // Median rate 0.5/s (time constant 2 s); 95% between 0.07/s and 3.6/s, i.e. time
  // constants from 0.3 s to 14 s around the 6 s response window.
  to_vector(log_c) ~ normal(log(0.5), 1);
  // Spread of participants' asymptotes and of bin means around a participant's curve:
  // a scale of 0.3 (a 35% amplitude change) is generous for trial-averaged signals.
  participant_sd ~ normal(0, 0.3);
  sigma ~ normal(0, 0.3);
  // Juarez & Steel (2010), also brms' default: from near-Cauchy tails to near-normal.
  nu ~ gamma(2, 0.1);

  if (!prior_only) {
    vector[n_series] participant_a = fitted + participant_a_shift;
    participant_a ~ normal(to_vector(a)[series_curve], participant_sd[series_cell]);
    if (student_t) {
      int start = 1;
      for (k in 1 : n_curves) {
        int end = start + curve_n_series[k] - 1;
        int cell = curve_cell[k];
        to_vector(y_matrix[ : , start : end])
        ~ student_t(nu[1],
                    to_vector(curve_mean(participant_a[start : end], b[cell],
                                         1 - rise[ : , k])),
                    sigma[cell]);
        start = end + 1;
      }
    } else {
      // Residual sum of squares of each series = its minimum over the asymptote
      // (given b and c) + shift^2 * sum(rise^2).
      vector[n_curves] curve_rise_square = columns_dot_self(rise)';
      vector[n_curves] curve_decay_square = columns_dot_self(1 - rise)';
      vector[n_series] b_series = b[series_cell];
      vector[n_series] rise_square = curve_rise_square[series_curve];
      vector[n_series] residual_square_sum
        = y_square_sum - 2 * b_series .* y_decay
          + square(b_series) .* curve_decay_square[series_curve]
          - square(fitted) .* rise_square
          + square(participant_a_shift) .* rise_square;
      vector[n_series] series_sigma = sigma[series_cell];
      target += -n_bins * sum(log(series_sigma))
                - 0.5 * sum(residual_square_sum ./ square(series_sigma));
    }
  }
}
generated quantities {
  vector[prior_only ? 0 : n_series] participant_a;
  matrix[n_groups, n_cells] a;
  matrix[n_groups, n_cells] c = exp(log_c);
  matrix[n_groups - 1, n_cells] contrast_a;
  matrix[n_groups - 1, n_cells] contrast_c;
  vector[n_obs] y_rep;
  vector[prior_only ? 0 : n_obs] log_lik;
  {
    matrix[n_bins, n_curves] rise = -expm1(-t * to_vector(c)');
    vector[n_series] fitted
      = least_squares_asymptote(b, rise, y_sum,
                                series_decay_products(1 - rise, y_matrix,
                                                      curve_n_series),
                                series_curve, series_cell);
    vector[n_series] asymptote;
    if (prior_only) {
      a = a_shift;
      asymptote = to_vector(normal_rng(to_vector(a)[series_curve],
                                       participant_sd[series_cell]));
    } else {
      a = curve_asymptote(a_shift, fitted, curve_n_series);
      participant_a = fitted + participant_a_shift;
      asymptote = participant_a;
    }
    contrast_a = a[contrast_group] - rep_matrix(a[reference_group], n_groups - 1);
    contrast_c = c[contrast_group] - rep_matrix(c[reference_group], n_groups - 1);

    int start = 1;
    for (k in 1 : n_curves) {
      int end = start + curve_n_series[k] - 1;
      int cell = curve_cell[k];
      int first_obs = (start - 1) * n_bins + 1;
      int last_obs = end * n_bins;
      vector[n_bins * curve_n_series[k]] mu = to_vector(curve_mean(asymptote[start : end],
                                                                   b[cell],
                                                                   1 - rise[ : , k]));
      if (student_t) {
        y_rep[first_obs : last_obs] = to_vector(student_t_rng(nu[1], mu, sigma[cell]));
      } else {
        y_rep[first_obs : last_obs] = to_vector(normal_rng(mu, sigma[cell]));
      }
      // Stan has no pointwise vectorised lpdf; this loop runs once per draw, not per
      // gradient, so it costs little.
      if (!prior_only) {
        for (n in 1 : rows(mu)) {
          int i = first_obs + n - 1;
          log_lik[i] = student_t ? student_t_lpdf(y[i] | nu[1], mu[n], sigma[cell])
                       : normal_lpdf(y[i] | mu[n], sigma[cell]);
        }
      }
      start = end + 1;
    }
  }
}
