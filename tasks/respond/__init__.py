"""The respond stage: expert identities, sampled answers, judgements and preference pairs."""
