import NodeKit

/// The core node pack: image I/O and processing, masks, text and math.
public enum CoreNodes {
    public static let pack = PackInfo(id: "core", version: "1.0.0")

    /// Every node type of the pack.
    public static let nodeTypes: [any NodeType.Type] = [
        ImageLoad.self, ImageSave.self, ImageResize.self, ImageCrop.self, ImagePadForOutpaint.self,
        ImageComposite.self, ImageCanny.self, ImageBlur.self,
        MaskThreshold.self, MaskInvert.self, MaskGrow.self, MaskBlur.self, MaskFromImage.self,
        TextTemplate.self, TextConcat.self, TextSave.self, MathFloat.self, MathInt.self,
    ]

    public static func register(into registry: NodeRegistry) throws {
        try registry.register(pack: pack, nodeTypes)
    }
}
