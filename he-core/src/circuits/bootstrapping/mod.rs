//! CKKS bootstrapping: ModRaise, CoeffToSlot, EvalMod, SlotToCoeff.
