import Foundation

/// One epoch of training, as logged.
public struct EpochRecord: Codable, Equatable, Sendable {
    public var epoch: Int
    public var learningRate: Float
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var testLoss: Double
    public var testAccuracy: Double
    public var testCorrect: Int
    public var testTotal: Int
    public var imagesPerSecond: Double
    public var seconds: Double
    /// On the held-out validation images, when the run keeps some (``TrainingOptions/validationSize``).
    public var validationLoss: Double?
    public var validationAccuracy: Double?

    static let csvHeader = "epoch,lr,train_loss,train_acc,test_loss,test_acc,test_correct,test_total,train_img_per_s,seconds,val_loss,val_acc"
    var csvRow: String {
        String(format: "%d,%.6g,%.6f,%.4f,%.6f,%.4f,%d,%d,%.1f,%.1f,", epoch, learningRate, trainLoss, 100 * trainAccuracy,
               testLoss, 100 * testAccuracy, testCorrect, testTotal, imagesPerSecond, seconds)
            + (validationLoss.map { String(format: "%.6f", $0) } ?? "") + ","
            + (validationAccuracy.map { String(format: "%.4f", 100 * $0) } ?? "")
    }
}

/// Writes `log.csv` and `curves.svg` for a run.
public enum TrainingLog {
    public static func writeCSV(_ records: [EpochRecord], to path: String) throws {
        let text = ([EpochRecord.csvHeader] + records.map(\.csvRow)).joined(separator: "\n") + "\n"
        try FileBytes.writeAtomically(Data(text.utf8), to: path)
    }

    /// Two panels: loss (train, test) and accuracy (train, test) per epoch.
    public static func writeSVG(_ records: [EpochRecord], title: String, to path: String) throws {
        let epochs = records.map { Double($0.epoch + 1) }
        let loss = SVGChart.Panel(title: "loss", yLabel: "cross-entropy", series: [
            .init(name: "train", color: "#1f77b4", x: epochs, y: records.map(\.trainLoss)),
            .init(name: "test", color: "#d62728", x: epochs, y: records.map(\.testLoss)),
        ])
        let acc = SVGChart.Panel(title: "accuracy", yLabel: "%", series: [
            .init(name: "train", color: "#1f77b4", x: epochs, y: records.map { 100 * $0.trainAccuracy }),
            .init(name: "test", color: "#d62728", x: epochs, y: records.map { 100 * $0.testAccuracy }),
        ])
        try FileBytes.writeAtomically(Data(SVGChart.render(title: title, xLabel: "epoch", panels: [loss, acc]).utf8), to: path)
    }
}

