//! One TCP connection to a meter.
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::fleet::Shared;

pub(crate) async fn serve(_shared: Arc<Shared>, _index: u32, mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}
