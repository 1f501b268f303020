// classifier.mlir: global average pool, tanh, dense 3->4, softmax (StableHLO, entry @main).
module @jit_classifier attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<1x64x64x3xf32>) -> (tensor<1x4xf32> {jax.result_info = "result"}) {
    %cst = stablehlo.constant dense<[[8.000000e-01, -4.000000e-01, 1.000000e-01, 3.000000e-01], [-2.000000e-01, 0.899999976, -5.000000e-01, 1.000000e-01], [3.000000e-01, 2.000000e-01, 0.699999988, -6.000000e-01]]> : tensor<3x4xf32>
    %cst_0 = stablehlo.constant dense<[5.000000e-02, -5.000000e-02, 0.000000e+00, 1.000000e-01]> : tensor<4xf32>
    %cst_1 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %0 = stablehlo.reduce(%arg0 init: %cst_1) applies stablehlo.add across dimensions = [1, 2] : (tensor<1x64x64x3xf32>, tensor<f32>) -> tensor<1x3xf32>
    %cst_2 = stablehlo.constant dense<4.096000e+03> : tensor<f32>
    %1 = stablehlo.broadcast_in_dim %cst_2, dims = [] : (tensor<f32>) -> tensor<1x3xf32>
    %2 = stablehlo.divide %0, %1 : tensor<1x3xf32>
    %cst_3 = stablehlo.constant dense<2.000000e+00> : tensor<f32>
    %3 = stablehlo.broadcast_in_dim %cst_3, dims = [] : (tensor<f32>) -> tensor<1x3xf32>
    %4 = stablehlo.multiply %2, %3 : tensor<1x3xf32>
    %5 = stablehlo.tanh %4 : tensor<1x3xf32>
    %6 = stablehlo.dot_general %5, %cst, contracting_dims = [1] x [0], precision = [DEFAULT, DEFAULT] : (tensor<1x3xf32>, tensor<3x4xf32>) -> tensor<1x4xf32>
    %7 = stablehlo.broadcast_in_dim %cst_0, dims = [1] : (tensor<4xf32>) -> tensor<1x4xf32>
    %8 = stablehlo.add %6, %7 : tensor<1x4xf32>
    %cst_4 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %9 = stablehlo.reduce(%8 init: %cst_4) applies stablehlo.maximum across dimensions = [1] : (tensor<1x4xf32>, tensor<f32>) -> tensor<1xf32>
    %cst_5 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %10 = stablehlo.broadcast_in_dim %cst_5, dims = [] : (tensor<f32>) -> tensor<1xf32>
    %11 = stablehlo.maximum %10, %9 : tensor<1xf32>
    %12 = stablehlo.broadcast_in_dim %11, dims = [0] : (tensor<1xf32>) -> tensor<1x1xf32>
    %13 = stablehlo.broadcast_in_dim %12, dims = [0, 1] : (tensor<1x1xf32>) -> tensor<1x4xf32>
    %14 = stablehlo.subtract %8, %13 : tensor<1x4xf32>
    %15 = stablehlo.exponential %14 : tensor<1x4xf32>
    %cst_6 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %16 = stablehlo.reduce(%15 init: %cst_6) applies stablehlo.add across dimensions = [1] : (tensor<1x4xf32>, tensor<f32>) -> tensor<1xf32>
    %17 = stablehlo.broadcast_in_dim %16, dims = [0] : (tensor<1xf32>) -> tensor<1x1xf32>
    %18 = stablehlo.broadcast_in_dim %17, dims = [0, 1] : (tensor<1x1xf32>) -> tensor<1x4xf32>
    %19 = stablehlo.divide %15, %18 : tensor<1x4xf32>
    return %19 : tensor<1x4xf32>
  }
}
