//! The Σ column of the seed's model comparison table is `FLOPs/1170M + params/6.9M`.
//! Every row is recomputed from its own FLOPs and params columns.

use micronet_score::Baseline;

#[test]
fn the_seed_comparison_table_sigma_column_is_recomputed_from_flops_and_params() {
    // (model, MFLOPs, M params, printed Σ)
    let rows = [
        ("OneShot+ Supernet", 1684.0, 15.4, 3.67),
        ("OneShot-S+ int8", 154.0, 1.01, 0.28),
        ("OneShot-S+ float16", 438.0, 1.85, 0.64),
        ("OneShot-S+", 588.0, 3.65, 1.03),
        // The seed prints 1.05 for the two OneShot rows, but 656/1170 + 3.5/6.9 = 1.068:
        // those two printed Σ values are not consistent with their own FLOPs and params.
        // We print the recomputed value (see docs/seed-fidelity.md).
        ("OneShot (our)", 656.0, 3.5, 1.07),
        ("OneShot (paper)", 656.0, 3.5, 1.07),
        ("MnasNet", 634.0, 4.2, 1.15),
        ("MobileNetV3 Large", 434.0, 5.4, 1.15),
        ("FBNet-B", 590.0, 4.5, 1.16),
        ("DARTS", 1148.0, 4.7, 1.66),
        ("NASNET-A", 1128.0, 5.3, 1.73),
        ("PNASNET", 1176.0, 5.1, 1.74),
        ("MobileNetV2 (1.4)", 1170.0, 6.9, 2.00),
    ];
    let baseline = Baseline::default();
    for (model, mflops, mparams, printed) in rows {
        let sigma = baseline.score_from_totals(mflops * 1e6, mparams * 1e6);
        let rounded = (sigma * 100.0).round() / 100.0;
        assert_eq!(rounded, printed, "{model}: Σ = {sigma}");
    }
}
