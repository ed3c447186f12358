/// Received messages laid out in one byte buffer that the loop reuses from batch to batch: no
/// allocation per message or per frame. A `RawBatch` is valid only during the handler call it is
/// given to; copy what must outlive it.
public struct RawBatch {
    /// Where one frame's bytes are in the buffer.
    struct Frame {
        var offset: Int
        var count: Int
    }

    let bytes: UnsafeRawPointer?
    let frames: UnsafeBufferPointer<Frame>
    /// Index of each message's first frame, then one past the last frame.
    let starts: UnsafeBufferPointer<Int>

    /// Number of messages.
    public var count: Int { max(0, starts.count - 1) }

    /// Number of frames of message `index`.
    public func frameCount(_ index: Int) -> Int { starts[index + 1] - starts[index] }

    /// Frame `frame` of message `index`.
    public func frame(_ frame: Int, of index: Int) -> UnsafeRawBufferPointer {
        let f = frames[starts[index] + frame]
        guard let bytes else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: bytes + f.offset, count: f.count)
    }

    /// Message `index` as a `Message` (a copy).
    public func message(_ index: Int) -> Message {
        Message((0..<frameCount(index)).map { Array(frame($0, of: index)) })
    }
}

/// The reusable storage behind `RawBatch` (one per socket, touched by one thread at a time).
final class RawBatchStorage {
    private var bytes: [UInt8] = []
    private var frames: [RawBatch.Frame] = []
    private var starts: [Int] = [0]

    var messageCount: Int { starts.count - 1 }
    var byteCount: Int { bytes.count }

    func reset() {
        bytes.removeAll(keepingCapacity: true)
        frames.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        starts.append(0)
    }

    /// Appends one frame of the message being read; `last` closes the message.
    func append(_ frame: UnsafeRawBufferPointer, last: Bool) {
        frames.append(RawBatch.Frame(offset: bytes.count, count: frame.count))
        bytes.append(contentsOf: frame)
        if last { starts.append(frames.count) }
    }

    /// Drops the frames of a message that was not finished (a receive failed midway).
    func dropUnfinished() {
        let keep = starts[starts.count - 1]
        if frames.count > keep {
            bytes.removeLast(bytes.count - frames[keep].offset)
            frames.removeLast(frames.count - keep)
        }
    }

    /// Appends whole messages (for batches that arrived as `Message`s).
    func append(_ messages: [Message]) {
        for message in messages {
            for (index, frame) in message.frames.enumerated() {
                frame.withUnsafeBytes { append($0, last: index == message.frames.count - 1) }
            }
            if message.frames.isEmpty { starts.append(frames.count) }
        }
    }

    /// Shrinks buffers that one unusual batch made large.
    func trim(maxBytes: Int) {
        if bytes.capacity > maxBytes { bytes = [] }
        if frames.capacity > 8192 { frames = [] }
        if starts.capacity > 8192 { starts = [0] }
    }

    func withBatch<R>(_ body: (RawBatch) -> R) -> R {
        bytes.withUnsafeBytes { raw in
            frames.withUnsafeBufferPointer { frames in
                starts.withUnsafeBufferPointer { starts in
                    body(RawBatch(bytes: raw.baseAddress, frames: frames, starts: starts))
                }
            }
        }
    }
}

extension RawBatch {
    /// Lays `messages` out as a raw batch for `body` (the path for batches that came through the stream).
    public static func with<R>(_ messages: [Message], _ body: (RawBatch) -> R) -> R {
        let storage = RawBatchStorage()
        storage.append(messages)
        return storage.withBatch(body)
    }
}
