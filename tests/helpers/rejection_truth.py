"""How the preprocessing's trial rejections compare with a simulated study's truth."""

# Reasons given by the artifact rules (preprocess.rejection.rules); the other reasons
# (outside_recording, flat_channel, saturated_channel) reject whole windows or channels.
ARTIFACT_REASONS = ("transient", "baseline", "condition_outlier")
CHANNEL_REASONS = ("outside_recording", "flat_channel", "saturated_channel")


def rejection_accuracy(truth_participants, qcs, muscles):
    """Recall and precision of the artifact rules against the injected artifacts.

    truth_participants: participant -> its truth (`ParticipantPlan.to_truth()`, as in
    truth.json's "participants"); qcs: participant -> its QC dict. A trial x muscle
    pair is injected when the trial's artifact lists that muscle, and rejected when
    an artifact rule rejected it; pairs rejected for their channel or window are left
    out. Participants: flawed in the truth vs excluded by the QC.
    """
    injected = rejected = hits = pairs = 0
    for participant, truth in truth_participants.items():
        reasons = {
            (entry["trial"], entry["muscle"]): entry["reason"]
            for entry in qcs[participant]["rejected_trials"]
        }
        for trial in truth["trials"]:
            for muscle in muscles:
                reason = reasons.get((trial["index"], muscle), "")
                if reason in CHANNEL_REASONS:
                    continue
                artifact = trial["artifact"]
                is_injected = artifact is not None and muscle in artifact["muscles"]
                is_rejected = reason in ARTIFACT_REASONS
                pairs += 1
                injected += is_injected
                rejected += is_rejected
                hits += is_injected and is_rejected
    flawed = {p for p, truth in truth_participants.items() if truth["flaw"]}
    excluded = {p for p, qc in qcs.items() if qc["excluded"]}
    return {
        "pairs": pairs,
        "injected": injected,
        "rejected": rejected,
        "true_rejections": hits,
        "recall": hits / injected if injected else float("nan"),
        "precision": hits / rejected if rejected else float("nan"),
        "flawed": sorted(flawed),
        "excluded": sorted(excluded),
        "flawed_kept": sorted(flawed - excluded),
        "clean_excluded": sorted(excluded - flawed),
    }
