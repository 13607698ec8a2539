import Foundation

/// Which learning-rate schedule a run uses, by the name the command line and the saved
/// options spell it.
public enum ScheduleKind: String, Codable, CaseIterable, Sendable {
    /// The authors' x0.1 at 2/3 and 5/6 of the run (``LearningRateSchedule/authors``).
    case step
    /// Half-cosine to 0, after the run's warm-up.
    case cosine
}

/// Learning rate as a function of training progress.
public enum LearningRateSchedule: Equatable, Sendable {
    /// The authors' step schedule scaled to the run: `base` until `milestones[0]` of the epochs,
    /// then x0.1 at each further milestone. With 300 epochs and milestones [2/3, 5/6] it is their
    /// 0.1 / 0.01 / 0.001 at epochs 200 and 250.
    case step(milestones: [Double])
    /// Half-cosine from `base` to 0, after a linear warm-up over `warmupEpochs`.
    case cosine(warmupEpochs: Double)

    /// The rate at `epoch` (fractional: epoch + batch / batches) of `totalEpochs`.
    public func rate(base: Float, epoch: Double, totalEpochs: Int) -> Float {
        let total = Double(max(totalEpochs, 1))
        switch self {
        case .step(let milestones):
            let passed = milestones.filter { epoch >= ($0 * total).rounded(.down) }.count
            return base * Float(pow(0.1, Double(passed)))
        case .cosine(let warmup):
            if warmup > 0 && epoch < warmup { return base * Float((epoch + 1e-3) / warmup) }
            let t = (epoch - warmup) / max(total - warmup, 1e-9)
            return base * Float(0.5 * (1 + cos(Double.pi * min(max(t, 0), 1))))
        }
    }

    /// The authors' schedule: x0.1 at 2/3 and 5/6 of the run.
    public static let authors = LearningRateSchedule.step(milestones: [2.0 / 3.0, 5.0 / 6.0])
}
