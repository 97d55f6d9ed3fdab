//! Pareto fronts: the candidates no other candidate beats on both cost and accuracy.

/// Indices of the Pareto front of `points` = (cost, accuracy), lower cost and higher
/// accuracy being better, sorted by ascending cost. Of equal points the first is kept.
pub fn front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a].0.total_cmp(&points[b].0).then(points[b].1.total_cmp(&points[a].1)).then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for i in order {
        if points[i].1 > best {
            best = points[i].1;
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_undominated_points() {
        let points = [(3.0, 0.9), (1.0, 0.5), (2.0, 0.4), (2.0, 0.7), (4.0, 0.85), (1.0, 0.5)];
        assert_eq!(front(&points), vec![1, 3, 0]);
        assert!(front(&[]).is_empty());
    }
}
