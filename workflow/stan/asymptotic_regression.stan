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
// - The normal model integrates the series asymptotes out exactly. Given b and c a
//   series is y = asymptote * rise + b * (1 - rise) + noise, rise = 1 - exp(-c t), so
//   its least-squares asymptote is normal around the curve's a with variance
//   participant_sd^2 + sigma^2 / sum(rise^2), and its residual sum of squares about
//   that fit is independent of it (sigma^2 chi-square, n_bins - 1 df). Sufficient
//   statistics, no per-observation term, and no series parameters: the sampler sees
//   only the curve and cell parameters, whatever the ratio of participant to bin
//   noise. The asymptotes are drawn from their conditional posterior afterwards.
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

  // Residual sum of squares of every series about its least-squares fit.
  vector least_squares_residual(vector b, matrix rise, data vector y_square_sum,
                                vector y_decay, vector fitted,
                                data array[] int series_curve,
                                data array[] int series_cell) {
    vector[cols(rise)] decay_square = columns_dot_self(1 - rise)';
    vector[cols(rise)] rise_square = columns_dot_self(rise)';
    vector[rows(fitted)] b_series = b[series_cell];
    return y_square_sum - 2 * b_series .* y_decay
           + square(b_series) .* decay_square[series_curve]
           - square(fitted) .* rise_square[series_curve];
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
  // Series asymptote minus its least-squares value (Student-t model only); prior
  // stated on the asymptote. Without data there is nothing to centre on: prior-only
  // draws of the asymptotes come from the hierarchical prior in generated quantities.
  vector[prior_only || !student_t ? 0 : n_series] participant_a_shift;
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

  if (!prior_only && student_t) {
    vector[n_series] participant_a = fitted + participant_a_shift;
    participant_a ~ normal(to_vector(a)[series_curve], participant_sd[series_cell]);
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
  } else if (!prior_only) {
    vector[n_curves] curve_rise_square = columns_dot_self(rise)';
    vector[n_series] rise_square = curve_rise_square[series_curve];
    vector[n_series] series_sigma = sigma[series_cell];
    // The least-squares asymptote's spread: participants plus the fit's own error.
    target += normal_lupdf(fitted | to_vector(a)[series_curve],
                                    sqrt(square(participant_sd[series_cell])
                                         + square(series_sigma) ./ rise_square));
    // The rest of the series' likelihood: its residual sum of squares about the fit,
    // and the Jacobian of the fit, 1 / sqrt(sum(rise^2)).
    target += -(n_bins - 1) * sum(log(series_sigma))
              - 0.5 * sum(least_squares_residual(b, rise, y_square_sum, y_decay,
                                                 fitted, series_curve, series_cell)
                          ./ square(series_sigma))
              - 0.5 * sum(log(rise_square));
  }
}
generated quantities {
  // Series asymptotes; in prior-only mode drawn from the hierarchical prior. y_rep and
  // log_lik follow from these, b, c, sigma and nu: computed outside the sampler
  // (src/mimicry/bayes/predictive.py), whose output they would multiply tenfold.
  vector[n_series] participant_a;
  matrix[n_groups, n_cells] a;
  matrix[n_groups, n_cells] c = exp(log_c);
  matrix[n_groups - 1, n_cells] contrast_a;
  matrix[n_groups - 1, n_cells] contrast_c;
  if (prior_only) {
    a = a_shift;
    participant_a = to_vector(normal_rng(to_vector(a)[series_curve],
                                         participant_sd[series_cell]));
  } else {
    matrix[n_bins, n_curves] rise = -expm1(-t * to_vector(c)');
    vector[n_series] fitted
      = least_squares_asymptote(b, rise, y_sum,
                                series_decay_products(1 - rise, y_matrix,
                                                      curve_n_series),
                                series_curve, series_cell);
    a = curve_asymptote(a_shift, fitted, curve_n_series);
    if (student_t) {
      participant_a = fitted + participant_a_shift;
    } else {
      // Conditional posterior of each asymptote: its prior and its fit, weighted by
      // their precisions.
      vector[n_curves] curve_rise_square = columns_dot_self(rise)';
      vector[n_series] fit_precision = curve_rise_square[series_curve]
                                       ./ square(sigma[series_cell]);
      vector[n_series] prior_precision = inv_square(participant_sd[series_cell]);
      vector[n_series] precision = fit_precision + prior_precision;
      participant_a = to_vector(normal_rng((fit_precision .* fitted
                                            + prior_precision
                                              .* to_vector(a)[series_curve])
                                           ./ precision,
                                           inv_sqrt(precision)));
    }
  }
  contrast_a = a[contrast_group] - rep_matrix(a[reference_group], n_groups - 1);
  contrast_c = c[contrast_group] - rep_matrix(c[reference_group], n_groups - 1);
}
