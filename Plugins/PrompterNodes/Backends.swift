import Foundation
import NodeKit
import Prompter

/// A local LLaVA model folder as a prompter.
enum LocalModels {
    static func load(folder: String, visionTower: String?, family: ChatFamily?) throws -> PrompterHandle {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw NodeError("no such model folder: \(folder)", port: "path")
        }
        let m = try LLaVAModel.load(folder: folder, visionTower: visionTower, family: family)
        return PrompterHandle(backend: m, family: m.chatFamily, bytes: m.weightBytes)
    }
}

/// An OpenAI-compatible server as a prompter. Conversations are kept in `family`'s form (its default system
/// prompt goes to the server, as LLMGA's models were trained with it); the server renders its own template.
enum RemoteModels {
    static func connect(endpoint: String, model: String, apiKey: String?, timeout: Double, retries: Int,
                        family: ChatFamily) throws -> PrompterHandle {
        guard !model.isEmpty else { throw NodeError("name the server's model (model input)", port: "model") }
        let backend = try OpenAIChatBackend(baseURL: endpoint, model: model, apiKey: apiKey, timeout: timeout,
                                            retry: .init(retries: retries))
        return PrompterHandle(backend: backend, family: family, bytes: 0)
    }
}
