import LruNet
import Foundation
let path = CommandLine.arguments[1]
let model = try LruNet(contentsOf: path)
let data = try DatasetKind.fashionMNIST.load(directory: "/usr/share/datasets/fashion-mnist", split: .test)
let r = try model.evaluate(data, batchSize: Int(CommandLine.arguments[2]) ?? 256)
print(r.correct, r.total, r.imagesPerSecond)
print(try model.costReport(height: 28, width: 28).text)
